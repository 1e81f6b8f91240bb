//! The group commit: transactional writers, one open transaction on each,
//! and the loop that commits a group of deliveries while the next group
//! gathers on another writer.
//!
//! A delivery's record is produced into the open transaction at once
//! ([`GroupCommit::send`]); its answer waits on a channel. The committer
//! seals the open group as soon as a writer is free for the next one (so a
//! commit starts when the previous one has finished), and a task commits
//! the sealed group:
//!
//! 1. its ledger lines go into the same transaction, as one record (or a
//!    few, each at most `LedgerRecords::max_bytes`);
//! 2. everything is sent, and every delivery report must carry an offset
//!    (a report without one proves nothing: see `kafka::receipt`);
//! 3. commit. A failure before the commit was asked for aborts: nothing
//!    of the group can become visible, each delivery gets 503. A commit
//!    whose outcome is unknown is settled by reading (see
//!    [`super::outcome`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use crate::error::BridgeError;
use crate::kafka::KafkaConfig;
use crate::kafka::client::{ClientEvents, KafkaContext};
use crate::kafka::publish::verdict_of;
use crate::kafka::transactions::outcome::{self, Settled};
use crate::receipt::Receipt;
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

/// Kafka's verdict on one delivery: committed (with where its record
/// landed), or why not.
pub(crate) type Verdict = Result<Receipt, Arc<BridgeError>>;

/// Where the ledger lines of a group go, in the group's transaction.
pub(crate) struct LedgerRecords {
    pub(crate) topic: Arc<str>,
    /// A key no other ledger record has (see `dedup::ledger`).
    pub(crate) next_key: Box<dyn Fn() -> [u8; 16] + Send + Sync>,
    /// Bytes of one record's value at most; lines are never split.
    pub(crate) max_bytes: usize,
}

/// One transactional producer and its `transactional.id`.
struct Writer {
    producer: FutureProducer<KafkaContext>,
    id: String,
    /// What made it: a fatal error needs a new producer, made the same way.
    config: ClientConfig,
}

/// A delivery in a group: its record's report, and where its answer goes.
struct Member {
    report: DeliveryFuture,
    topic: Arc<str>,
    answer: oneshot::Sender<Verdict>,
}

/// The group taking deliveries now, on the writer whose transaction is
/// open. No writer: none is initialised yet, or the bridge is stopping.
struct OpenGroup {
    writer: Option<Arc<Writer>>,
    members: Vec<Member>,
    /// The members' ledger lines, one after another.
    lines: Vec<u8>,
    /// When the first member of this group arrived.
    since: Instant,
}

/// The writers, the open group, and the committer's state.
pub(crate) struct GroupCommit {
    open: Mutex<OpenGroup>,
    /// Woken by the first member of a group, and by `close`.
    has_members: Notify,
    /// Writers free for a new transaction; the committer takes them.
    free_tx: mpsc::UnboundedSender<Arc<Writer>>,
    free_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Arc<Writer>>>,
    /// Commits in progress, and a wake-up as each ends.
    committing: AtomicUsize,
    commit_ended: Notify,
    /// Set once, by `close`: no new transaction.
    closing_tx: tokio::sync::watch::Sender<bool>,
    closing_rx: tokio::sync::watch::Receiver<bool>,
    /// Writers initialised so far (readiness: none yet fails it).
    ready_writers: AtomicUsize,
    /// Why no writer could be initialised, when one could not.
    init_problem: Mutex<Option<String>>,
    producers: usize,
    commit_interval: Duration,
    timeout: Duration,
    ledger: Option<LedgerRecords>,
    /// For the read-back that settles an unknown outcome.
    kafka: KafkaConfig,
    context: KafkaContext,
    metrics: Arc<Metrics>,
    events: Arc<ClientEvents>,
}

impl GroupCommit {
    /// Creates the writers (`<id_prefix>-0`, ...) and starts initialising
    /// them and the committer in the background; sends fail with 503 until
    /// the first writer is ready.
    pub(crate) fn start(
        kafka: &KafkaConfig,
        producer_config: ClientConfig,
        id_prefix: &str,
        ledger: Option<LedgerRecords>,
        metrics: Arc<Metrics>,
        events: Arc<ClientEvents>,
    ) -> Result<Arc<GroupCommit>, KafkaError> {
        let cfg = &kafka.transactions;
        let context = KafkaContext::transactional_writer(metrics.clone(), events.clone());
        let mut writers = Vec::with_capacity(cfg.producers);
        for n in 0..cfg.producers {
            let id = format!("{id_prefix}-{n}");
            let c = super::writer_config(&producer_config, &id, cfg.timeout);
            writers.push(Arc::new(Writer {
                producer: c.create_with_context(context.clone())?,
                id,
                config: c,
            }));
        }
        let (free_tx, free_rx) = mpsc::unbounded_channel();
        let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
        let group = Arc::new(GroupCommit {
            open: Mutex::new(OpenGroup {
                writer: None,
                members: Vec::new(),
                lines: Vec::new(),
                since: Instant::now(),
            }),
            has_members: Notify::new(),
            free_tx,
            free_rx: tokio::sync::Mutex::new(free_rx),
            committing: AtomicUsize::new(0),
            commit_ended: Notify::new(),
            closing_tx,
            closing_rx,
            ready_writers: AtomicUsize::new(0),
            init_problem: Mutex::new(None),
            producers: cfg.producers,
            commit_interval: cfg.commit_interval,
            timeout: cfg.timeout,
            ledger,
            kafka: kafka.clone(),
            context,
            metrics,
            events,
        });
        for w in writers {
            tokio::spawn(group.clone().initialise(w));
        }
        tokio::spawn(group.clone().run());
        Ok(group)
    }

    fn lock_open(&self) -> MutexGuard<'_, OpenGroup> {
        // Plain data: a panic elsewhere must not stop every delivery.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Produces `record` into the open transaction; the receiver gets the
    /// verdict once the transaction has committed or aborted. `line` is
    /// the delivery's ledger line, written in the same transaction.
    pub(crate) fn send(
        &self,
        record: FutureRecord<'_, str, [u8]>,
        topic: &Arc<str>,
        line: Option<&[u8]>,
    ) -> Result<oneshot::Receiver<Verdict>, BridgeError> {
        let mut open = self.lock_open();
        let Some(writer) = open.writer.clone() else {
            return Err(if self.is_closing() {
                BridgeError::ShuttingDown
            } else {
                BridgeError::TransactionsNotReady
            });
        };
        let report = writer
            .producer
            .send_result(record)
            .map_err(|(e, _)| BridgeError::from_kafka(e, topic))?;
        let (answer, verdict) = oneshot::channel();
        if open.members.is_empty() {
            open.since = Instant::now();
            self.has_members.notify_one();
        }
        open.members.push(Member {
            report,
            topic: topic.clone(),
            answer,
        });
        if let (Some(line), Some(_)) = (line, &self.ledger) {
            open.lines.extend_from_slice(line);
        }
        Ok(verdict)
    }

    /// Why deliveries cannot be written now, for readiness.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.ready_writers.load(Ordering::Acquire) > 0 {
            return None;
        }
        let p = self
            .init_problem
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_else(|| {
                "transactional writers not initialised yet (InitProducerId)".to_string()
            });
        Some(p)
    }

    /// Stops taking deliveries, commits the open group, and waits (until
    /// `until`) for every commit in progress.
    pub(crate) async fn close(&self, until: Instant) {
        self.closing_tx.send_replace(true);
        self.has_members.notify_one();
        let all_ended = async {
            loop {
                let ended = self.commit_ended.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                let open = self.lock_open().members.len();
                if open == 0 && self.committing.load(Ordering::Acquire) == 0 {
                    return;
                }
                ended.await;
            }
        };
        if tokio::time::timeout_at(until, all_ended).await.is_err() {
            tracing::warn!(
                "transactions still committing at shutdown; their deliveries were answered 503 or will be settled by the next start under the same id"
            );
        }
    }

    /// `init_transactions` until it succeeds: the writer then joins the
    /// free ones. Until the first does, readiness says why.
    async fn initialise(self: Arc<Self>, mut writer: Arc<Writer>) {
        let mut pause = Duration::from_millis(500);
        loop {
            if self.is_closing() {
                return;
            }
            let w = writer.clone();
            let timeout = self.kafka.admin_timeout.max(Duration::from_secs(5));
            let result =
                tokio::task::spawn_blocking(move || w.producer.init_transactions(timeout)).await;
            match result {
                Ok(Ok(())) => {
                    self.ready_writers.fetch_add(1, Ordering::AcqRel);
                    if let Ok(mut p) = self.init_problem.lock() {
                        *p = None;
                    }
                    events::transactional_writer_ready(&writer.id);
                    let _ = self.free_tx.send(writer);
                    return;
                }
                Ok(Err(e)) => {
                    let problem = describe_init_error(&writer.id, &e);
                    events::transactional_writer_refused(&writer.id, &problem);
                    if let Ok(mut p) = self.init_problem.lock() {
                        *p = Some(problem);
                    }
                    // A fatal error (an ACL refusal is one) spoils this
                    // producer for good: the next attempt needs a new one.
                    if is_fatal(&e) {
                        match self.replacement(&writer) {
                            Ok(w) => writer = w,
                            Err(e) => {
                                tracing::error!(writer = %writer.id, error = %e, "cannot recreate a transactional producer");
                                return;
                            }
                        }
                    }
                }
                Err(_) => return,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.kafka.health_interval.max(Duration::from_secs(1)));
        }
    }

    /// A new producer with the same `transactional.id`.
    fn replacement(&self, old: &Writer) -> Result<Arc<Writer>, KafkaError> {
        Ok(Arc::new(Writer {
            producer: old.config.create_with_context(self.context.clone())?,
            id: old.id.clone(),
            config: old.config.clone(),
        }))
    }

    /// The committer. It keeps a writer open for deliveries; once the open
    /// group has members it takes a free writer (waiting for one only while
    /// a commit runs, which frees one), begins its transaction, swaps it in
    /// and hands the sealed group to a task that commits it.
    async fn run(self: Arc<Self>) {
        let mut free = self.free_rx.lock().await;
        let mut closing = self.closing_rx.clone();
        loop {
            // A. A writer open for deliveries.
            if self.lock_open().writer.is_none() {
                let w = tokio::select! {
                    w = free.recv() => w,
                    _ = closing.wait_for(|c| *c) => None,
                };
                let Some(w) = w else { return };
                if let Err(e) = w.producer.begin_transaction() {
                    self.writer_lost(&w, &format!("begin_transaction failed: {e}"));
                    continue;
                }
                self.lock_open().writer = Some(w);
                continue;
            }
            // B. A group to seal.
            self.wait_for_members().await;
            let stopping = self.is_closing();
            // C. Its successor: none when stopping, or when no writer is
            //    free and no commit runs (others still initialising).
            let next = if stopping {
                None
            } else {
                self.next_free(&mut free).await
            };
            let next = next.and_then(|w| match w.producer.begin_transaction() {
                Ok(()) => Some(w),
                Err(e) => {
                    self.writer_lost(&w, &format!("begin_transaction failed: {e}"));
                    None
                }
            });
            self.linger().await;
            let (sealed, members, lines) = {
                let mut open = self.lock_open();
                let members = std::mem::take(&mut open.members);
                let lines = std::mem::take(&mut open.lines);
                let sealed = std::mem::replace(&mut open.writer, next);
                (sealed, members, lines)
            };
            if let Some(sealed) = sealed
                && !members.is_empty()
            {
                self.committing.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(self.clone().commit(sealed, members, lines));
            }
            if stopping {
                self.commit_ended.notify_waiters();
                return;
            }
        }
    }

    fn is_closing(&self) -> bool {
        *self.closing_rx.borrow()
    }

    /// A free writer: one at hand, or the one a running commit frees.
    async fn next_free(
        &self,
        free: &mut mpsc::UnboundedReceiver<Arc<Writer>>,
    ) -> Option<Arc<Writer>> {
        loop {
            let ended = self.commit_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if let Ok(w) = free.try_recv() {
                return Some(w);
            }
            if self.committing.load(Ordering::Acquire) == 0 {
                return None;
            }
            ended.await;
        }
    }

    async fn wait_for_members(&self) {
        loop {
            let woken = self.has_members.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if !self.lock_open().members.is_empty() || self.is_closing() {
                return;
            }
            woken.await;
        }
    }

    /// With more than two writers a free one is often at hand while
    /// another commits: the group then gathers for up to
    /// `commit_interval`, or until that commit ends.
    async fn linger(&self) {
        if self.producers <= 2 || self.committing.load(Ordering::Acquire) == 0 {
            return;
        }
        let until = self.lock_open().since + self.commit_interval;
        let ended = self.commit_ended.notified();
        tokio::select! {
            () = ended => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }

    /// Commits one sealed group and answers each of its deliveries.
    async fn commit(
        self: Arc<Self>,
        writer: Arc<Writer>,
        mut members: Vec<Member>,
        lines: Vec<u8>,
    ) {
        let started = Instant::now();
        let n = members.len() as u64;
        // 1. The ledger lines, in this transaction.
        let mut failure: Option<Arc<BridgeError>> = None;
        let mut ledger_reports = Vec::new();
        let mut ledger_lines = 0u64;
        if let Some(ledger) = &self.ledger {
            for chunk in records_of(&lines, ledger.max_bytes) {
                ledger_lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                let key = (ledger.next_key)();
                let rec: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(&ledger.topic).key(&key[..]).payload(chunk);
                match writer.producer.send_result(rec) {
                    Ok(r) => ledger_reports.push(r),
                    Err((e, _)) => {
                        failure = Some(Arc::new(BridgeError::from_kafka(e, &ledger.topic)));
                        break;
                    }
                }
            }
        }
        // 2. Everything sent now (flush ignores linger.ms), every report
        //    read: each must prove its write.
        let w = writer.clone();
        let timeout = self.timeout;
        let _ = tokio::task::spawn_blocking(move || w.producer.flush(timeout)).await;
        let mut verdicts = Vec::with_capacity(members.len());
        for m in &mut members {
            verdicts.push(verdict_of((&mut m.report).await, &m.topic, &self.metrics));
        }
        for report in ledger_reports {
            let Some(ledger) = &self.ledger else { break };
            if let Err(e) = verdict_of(report.await, &ledger.topic, &self.metrics) {
                failure.get_or_insert(e);
            }
        }
        if failure.is_none() {
            failure = verdicts.iter().find_map(|v| v.as_ref().err().cloned());
        }
        // 3. Commit — or abort what can then never be visible.
        let outcome = match failure {
            Some(cause) => self.abort(&writer, cause).await,
            None => self.try_commit(&writer).await,
        };
        let outcome = match outcome {
            Ended::Unknown(cause) => {
                let first = members
                    .iter()
                    .zip(&verdicts)
                    .find_map(|(m, v)| v.as_ref().ok().map(|r| (m.topic.clone(), *r)));
                self.settle(first, cause).await
            }
            ended => ended,
        };
        let took = started.elapsed();
        match &outcome {
            Ended::Committed => {
                events::transaction_committed(&self.metrics, &writer.id, n, took);
                if ledger_lines > 0 {
                    events::ledger_written(&self.metrics, ledger_lines);
                }
            }
            Ended::Aborted(cause) => {
                events::transaction_aborted(&self.metrics, &writer.id, n, &cause_of(cause), took)
            }
            Ended::Unknown(cause) => {
                events::transaction_unsettled(&self.metrics, &writer.id, n, &cause_of(cause), took)
            }
        }
        for (m, v) in members.into_iter().zip(verdicts) {
            let answer = match (&outcome, v) {
                (Ended::Committed, v) => v,
                // Its own failure says the most.
                (_, Err(own)) => Err(own),
                (Ended::Aborted(cause), Ok(_)) => Err(Arc::new(BridgeError::TransactionAborted {
                    cause: cause_of(cause),
                })),
                (Ended::Unknown(cause), Ok(_)) => {
                    Err(Arc::new(BridgeError::TransactionUnsettled {
                        cause: cause_of(cause),
                    }))
                }
            };
            let _ = m.answer.send(answer);
        }
        self.committing.fetch_sub(1, Ordering::AcqRel);
        self.commit_ended.notify_waiters();
    }

    /// `commit_transaction`, retried while librdkafka says a retry may
    /// succeed, within the transaction timeout.
    async fn try_commit(&self, writer: &Arc<Writer>) -> Ended {
        let until = Instant::now() + self.timeout;
        loop {
            let w = writer.clone();
            let left = until.saturating_duration_since(Instant::now());
            let result =
                tokio::task::spawn_blocking(move || w.producer.commit_transaction(left)).await;
            let e = match result {
                Ok(Ok(())) => {
                    let _ = self.free_tx.send(writer.clone());
                    return Ended::Committed;
                }
                Ok(Err(e)) => e,
                Err(join) => {
                    self.writer_lost(writer, &format!("commit task failed: {join}"));
                    return Ended::Unknown(Arc::new(BridgeError::ProducerFatal));
                }
            };
            // The transaction's own error says more than a delivery's.
            let cause = Arc::new(BridgeError::Kafka(e.clone()));
            match &e {
                // A fatal error (fenced, most often) does not say whether an
                // earlier attempt of this commit reached the coordinator:
                // only reading back settles it.
                KafkaError::Transaction(t) if t.is_fatal() => {
                    self.writer_lost(writer, &format!("commit_transaction failed: {e}"));
                    return Ended::Unknown(cause);
                }
                // librdkafka: the commit did not happen; abort and go on.
                KafkaError::Transaction(t) if t.txn_requires_abort() => {
                    return self.abort(writer, cause).await;
                }
                KafkaError::Transaction(t) if t.is_retriable() && Instant::now() < until => {
                    continue;
                }
                _ => {
                    self.writer_lost(writer, &format!("commit_transaction failed: {e}"));
                    return Ended::Unknown(cause);
                }
            }
        }
    }

    /// Aborts the writer's transaction; the commit was never asked for, or
    /// failed in a way that says it did not happen. The group's records
    /// can then never become visible, whatever `abort_transaction` says.
    async fn abort(&self, writer: &Arc<Writer>, cause: Arc<BridgeError>) -> Ended {
        let until = Instant::now() + self.timeout;
        loop {
            let w = writer.clone();
            let left = until.saturating_duration_since(Instant::now());
            let result =
                tokio::task::spawn_blocking(move || w.producer.abort_transaction(left)).await;
            match result {
                Ok(Ok(())) => {
                    let _ = self.free_tx.send(writer.clone());
                    break;
                }
                Ok(Err(KafkaError::Transaction(t)))
                    if t.is_retriable() && Instant::now() < until =>
                {
                    continue;
                }
                Ok(Err(e)) => {
                    self.writer_lost(writer, &format!("abort_transaction failed: {e}"));
                    break;
                }
                Err(join) => {
                    self.writer_lost(writer, &format!("abort task failed: {join}"));
                    break;
                }
            }
        }
        Ended::Aborted(cause)
    }

    /// The commit's outcome is unknown: read the group's first record back,
    /// `read_committed`, until the transaction has ended one way or the
    /// other (fenced by our successor's `init_transactions`, completed by
    /// the coordinator, or aborted at its timeout).
    async fn settle(&self, first: Option<(Arc<str>, Receipt)>, cause: Arc<BridgeError>) -> Ended {
        let Some((topic, receipt)) = first else {
            // No record proved written: nothing to commit.
            return Ended::Aborted(cause);
        };
        let until = Instant::now() + self.timeout * 2;
        match outcome::read_back(&self.kafka, self.context.clone(), &topic, receipt, until).await {
            Settled::Committed => Ended::Committed,
            Settled::Aborted => Ended::Aborted(cause),
            Settled::Unknown(why) => {
                tracing::warn!(topic = %topic, error = %why, "could not settle a transaction's outcome");
                Ended::Unknown(cause)
            }
        }
    }

    /// A writer that can take no more transactions. The bridge cannot
    /// promise anything with a writer in an unknown state: it stops, and
    /// its successor under the same id settles what was open.
    fn writer_lost(&self, writer: &Writer, reason: &str) {
        self.events
            .set_fatal(&format!("transactional writer {}: {reason}", writer.id));
    }
}

/// How a group's transaction ended.
enum Ended {
    Committed,
    /// Aborted, or never committed: nothing of it is visible.
    Aborted(Arc<BridgeError>),
    /// Not known, even after trying to settle it.
    Unknown(Arc<BridgeError>),
}

/// The ledger lines cut into record values of at most `max` bytes, at line
/// ends (a line longer than `max` goes alone).
pub(crate) fn records_of(lines: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut last_end = 0;
    for (i, b) in lines.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        let end = i + 1;
        if end - start > max && last_end > start {
            out.push(&lines[start..last_end]);
            start = last_end;
        }
        last_end = end;
    }
    if last_end > start {
        out.push(&lines[start..last_end]);
    }
    out
}

/// Why a transaction ended as it did, for its deliveries' answers: a Kafka
/// error with librdkafka's own words.
fn cause_of(e: &BridgeError) -> String {
    match e {
        BridgeError::Kafka(k) => k.to_string(),
        other => other.to_string(),
    }
}

fn is_fatal(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(t) => t.is_fatal(),
        other => other.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal),
    }
}

/// What readiness says when `init_transactions` fails: the cause, and the
/// setting or ACL that fixes it.
pub(crate) fn describe_init_error(id: &str, e: &KafkaError) -> String {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(C::TransactionalIdAuthorizationFailed) => format!(
            "Kafka refuses transactional id {id:?}: grant the bridge's principal Write and Describe on TransactionalId {id:?} (or the prefix kafka.transactions.id); see docs/deploy.md, ACLs. Or set kafka.transactions.enabled = false"
        ),
        Some(C::ClusterAuthorizationFailed) => format!(
            "Kafka refuses transactions to this principal (transactional id {id:?}): grant IdempotentWrite on the cluster, and Write and Describe on TransactionalId; see docs/deploy.md, ACLs"
        ),
        Some(C::InvalidTransactionTimeout) => format!(
            "kafka.transactions.timeout exceeds the brokers' transaction.max.timeout.ms (writer {id:?}): lower it"
        ),
        Some(
            C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::OperationTimedOut
            | C::RequestTimedOut,
        ) => format!(
            "no transaction coordinator answered for {id:?}: the brokers' transaction state log (__transaction_state) needs transaction.state.log.replication.factor brokers, with transaction.state.log.min.isr of them in sync"
        ),
        _ => format!("transactional writer {id:?} cannot start: {e}"),
    }
}

#[cfg(test)]
mod tests;
