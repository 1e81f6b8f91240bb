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
//! 1. its ledger lines go into the same transaction: the first member's
//!    line at once, as a record of its own, so that the ledger partition
//!    is registered with the transaction while the group gathers; the
//!    rest, as one record (or a few, each at most
//!    `LedgerRecords::max_bytes`) under the same key, so the same
//!    partition, at the seal. A seal then costs no round trip the last
//!    member's own record does not already take (a ledger partition first
//!    met at the seal cost two, and a record per line a third of the CPU:
//!    measured in docs/performance.md);
//! 2. every delivery report must carry an offset (a report without one
//!    proves nothing: see `kafka::receipt`);
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

/// Writes one delivery's ledger line at the end of a buffer.
pub(crate) type LineWriter<'a> = dyn Fn(&mut Vec<u8>) + 'a;

/// Where the ledger lines of a group go, in the group's transaction.
pub(crate) struct LedgerRecords {
    pub(crate) topic: Arc<str>,
    /// A key no other group's ledger records have (see `dedup::ledger`).
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
    /// Whether its request still waits for this answer (see [`Withdrawal`]).
    claim: Claim,
}

impl Member {
    /// Takes the member into the commit; false if its request was already
    /// answered, and the group must then abort.
    fn commit_claimed(&self) -> bool {
        self.claim.take_for_commit()
    }
}

/// The group taking deliveries now, on the writer whose transaction is
/// open. No writer: none is initialised yet, or the bridge is stopping.
struct OpenGroup {
    writer: Option<Arc<Writer>>,
    members: Vec<Member>,
    /// The members' ledger records sent so far.
    ledger: GroupLedger,
    /// The ledger lines not sent yet, one after another.
    lines: Vec<u8>,
    /// When the first member of this group arrived.
    since: Instant,
}

/// A group's ledger records: their key, their reports, and the first
/// failure to send one (the group must then abort: a record of it would be
/// visible with no ledger line to recognise its retry by).
#[derive(Default)]
struct GroupLedger {
    key: [u8; 16],
    reports: Vec<DeliveryFuture>,
    /// Lines in the records sent.
    lines: u64,
    refused: Option<Arc<BridgeError>>,
}

impl GroupLedger {
    /// Sends `lines` as one ledger record of this group, in `writer`'s
    /// transaction.
    fn send(&mut self, writer: &Writer, records: &LedgerRecords, lines: &[u8]) {
        let rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&records.topic)
            .key(&self.key[..])
            .payload(lines);
        match writer.producer.send_result(rec) {
            Ok(r) => {
                self.reports.push(r);
                self.lines += lines.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            Err((e, _)) => {
                let refused = Arc::new(BridgeError::from_kafka(e, &records.topic));
                self.refused.get_or_insert(refused);
            }
        }
    }
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
    /// Every writer was ready once: from then on a writer being replaced
    /// (see `ending`) does not fail readiness while two others take turns.
    all_ready_once: std::sync::atomic::AtomicBool,
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
                ledger: GroupLedger::default(),
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
            all_ready_once: std::sync::atomic::AtomicBool::new(false),
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
    /// verdict once the transaction has committed or aborted; drop the
    /// [`Withdrawal`] when the request no longer waits for it. `line`
    /// writes the delivery's ledger line, which goes into the same
    /// transaction after the record.
    pub(crate) fn send(
        &self,
        record: FutureRecord<'_, str, [u8]>,
        topic: &Arc<str>,
        line: Option<&LineWriter<'_>>,
    ) -> Result<(oneshot::Receiver<Verdict>, Withdrawal), BridgeError> {
        let mut open = self.lock_open();
        let OpenGroup {
            writer,
            members,
            ledger: group_ledger,
            lines,
            since,
        } = &mut *open;
        let Some(writer) = writer.as_ref() else {
            return Err(if self.is_closing() {
                BridgeError::ShuttingDown
            } else {
                // Cold path: only while no writer is ready.
                BridgeError::TransactionsNotReady {
                    why: self.problem(),
                }
            });
        };
        let report = writer
            .producer
            .send_result(record)
            .map_err(|(e, _)| BridgeError::from_kafka(e, topic))?;
        let (answer, verdict) = oneshot::channel();
        let claim = Claim::waiting();
        if members.is_empty() {
            *since = Instant::now();
            self.has_members.notify_one();
        }
        members.push(Member {
            report,
            topic: topic.clone(),
            answer,
            claim: claim.clone(),
        });
        // After the record, never before: a line whose record was refused
        // would make POPBiLL's retry look like a duplicate.
        if let (Some(write_line), Some(records)) = (line, &self.ledger) {
            write_line(lines);
            if members.len() == 1 {
                group_ledger.key = (records.next_key)();
                group_ledger.send(writer, records, lines);
                lines.clear();
            }
        }
        Ok((verdict, Withdrawal::of(claim)))
    }

    /// Why deliveries cannot be written now, for readiness.
    pub(crate) fn problem(&self) -> Option<String> {
        // Every writer, not the first: with one ready, its group is sealed
        // with no successor, and deliveries meanwhile find no open
        // transaction (seen: a redrive's first window got 503s).
        let ready = self.ready_writers.load(Ordering::Acquire);
        if ready >= self.producers || (self.all_ready_once.load(Ordering::Acquire) && ready >= 2) {
            return None;
        }
        // A refused login or certificate stops InitProducerId too, which
        // then reads as "no transaction coordinator": the cause is the
        // connection, named beside this.
        if self.events.connection_refused().is_some() {
            return Some(
                "transactional writers not initialised: Kafka refuses the bridge's connection (the reason is given above)".to_string(),
            );
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

    fn is_closing(&self) -> bool {
        *self.closing_rx.borrow()
    }

    /// A writer that can take no more transactions. The bridge cannot
    /// promise anything with a writer in an unknown state: it stops, and
    /// its successor under the same id settles what was open.
    fn writer_lost(&self, writer: &Writer, reason: &str) {
        self.events
            .set_fatal(&format!("transactional writer {}: {reason}", writer.id));
    }
}

mod claim;
mod committer;
mod ending;
mod initialisation;
mod reports;

use reports::wait_for_reports_released;

use claim::Claim;
pub(crate) use claim::Withdrawal;

#[cfg(test)]
use ending::records_of;
#[cfg(test)]
use initialisation::describe_init_error;

#[cfg(test)]
mod tests;
