//! How a sealed group ends: its ledger lines written in its transaction,
//! every report checked (each must carry an offset), then the commit — or
//! the abort, or, when the commit's outcome is unknown, the read-back that
//! settles it; and each delivery answered accordingly.

use super::*;

use rdkafka::error::KafkaResult;

/// Between two attempts of a commit or an abort that may succeed later.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

impl GroupCommit {
    /// Commits one sealed group and answers each of its deliveries.
    pub(super) async fn commit(
        self: Arc<Self>,
        writer: Arc<Writer>,
        mut members: Vec<Member>,
        mut ledger: GroupLedger,
        lines: Vec<u8>,
        opened: Instant,
    ) {
        let started = Instant::now();
        let n = members.len() as u64;
        // 1. The rest of its ledger lines, in this transaction.
        if let Some(records) = &self.ledger {
            for chunk in records_of(&lines, records.max_bytes) {
                ledger.send(&writer, records, chunk);
            }
        }
        // 2. What still lingers in the writer's queue sent now.
        self.send_lingering(&writer).await;
        // 3. Every report read: each must prove its write. Not through
        //    `flush`: rust-rdkafka's flush polls in steps of 100 ms while
        //    anything is outstanding, and the producer's own thread takes
        //    the reports, so every transaction waited ~100 ms (measured:
        //    docs/performance.md). The reports come as the records are
        //    written, most while the group gathered.
        let mut failure = ledger.refused;
        let ledger_lines = ledger.lines;
        let mut verdicts = Vec::with_capacity(members.len());
        for m in &mut members {
            let verdict = verdict_of((&mut m.report).await, &m.topic, &self.metrics);
            verdicts.push(verdict.map_err(|e| self.denied_or(e, &m.topic)));
        }
        if let Some(ledger_records) = &self.ledger {
            for report in ledger.reports {
                if let Err(e) = verdict_of(report.await, &ledger_records.topic, &self.metrics) {
                    failure.get_or_insert(e);
                }
            }
        }
        if failure.is_none() {
            failure = verdicts.iter().find_map(|v| v.as_ref().err().cloned());
        }
        // A denied write is the cause the group's answers should name, not
        // the purges that followed it.
        if let Some(denied) = verdicts.iter().find_map(|v| {
            v.as_ref()
                .err()
                .filter(|e| matches!(***e, BridgeError::WriteDenied { .. }))
        }) {
            failure = Some(denied.clone());
        }
        // Every member's request must still wait for the verdict: one
        // already answered 503 must not become visible (see `Withdrawal`).
        // All are claimed (no short cut), so none withdraws after this.
        if failure.is_none()
            && members.iter().filter(|m| m.commit_claimed()).count() < members.len()
        {
            failure = Some(Arc::new(BridgeError::PublishTimeout));
        }
        // 4. Commit — or abort what can then never be visible.
        let outcome = match failure {
            Some(cause) => self.abort(&writer, cause, opened).await,
            None => self.try_commit(&writer, opened).await,
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
        // One error for every member the group's end refused: the cause is
        // the group's, not theirs.
        let refused = match &outcome {
            Ended::Committed => None,
            Ended::Aborted(cause) => Some(Arc::new(BridgeError::TransactionAborted {
                cause: cause_of(cause),
            })),
            Ended::Unknown(cause) => Some(Arc::new(BridgeError::TransactionUnsettled {
                cause: cause_of(cause),
            })),
        };
        for (m, v) in members.into_iter().zip(verdicts) {
            let answer = match (v, &refused) {
                (v, None) => v,
                // A record purged because its transaction failed says
                // nothing of why: the group's cause does.
                (Err(own), Some(e)) if purged(&own) => Err(e.clone()),
                // Otherwise its own failure says the most.
                (Err(own), Some(_)) => Err(own),
                (Ok(_), Some(e)) => Err(e.clone()),
            };
            let _ = m.answer.send(answer);
        }
        self.committing.fetch_sub(1, Ordering::AcqRel);
        self.commit_ended.notify_waiters();
    }

    /// Ends the writer's transaction — `commit_transaction`, or
    /// `abort_transaction` — retried for as long as librdkafka says a retry
    /// may succeed. A cluster out of reach makes every attempt time out
    /// ("retry call to resume"): the transaction waits for it to come back
    /// (its deliveries are answered at their deadline, and remembered if
    /// it commits) rather than giving the writer up and stopping the
    /// bridge, which is what chaos runs showed bounded retries did.
    ///
    /// Once ended, the writer's next transaction is begun in the same
    /// blocking call: `begin_transaction` waits for librdkafka's main
    /// thread, and on a runtime worker that wait held every task queued
    /// behind it (measured, open loop at 6,000/s: 0.16 ms typical, 13 %
    /// over 0.5 ms, up to 7 ms). `Ok` holds how that went.
    async fn end_transaction(
        &self,
        writer: &Arc<Writer>,
        commit: bool,
    ) -> Result<KafkaResult<()>, KafkaError> {
        loop {
            let (w, timeout) = (writer.clone(), self.timeout);
            let result = tokio::task::spawn_blocking(move || {
                let ended = match commit {
                    true => {
                        wait_for_reports_released(&w.producer);
                        w.producer.commit_transaction(timeout)
                    }
                    false => w.producer.abort_transaction(timeout),
                };
                ended.map(|()| w.producer.begin_transaction())
            })
            .await
            // The blocking task itself failed: the writer's state is lost.
            .unwrap_or(Err(KafkaError::Canceled));
            match result {
                Err(KafkaError::Transaction(t))
                    if t.is_retriable() && !t.is_fatal() && !t.txn_requires_abort() =>
                {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                ended => return ended,
            }
        }
    }

    /// Commits the writer's transaction, opened (its first member
    /// arrived) at `opened`; see [`GroupCommit::end_transaction`].
    async fn try_commit(self: &Arc<Self>, writer: &Arc<Writer>, opened: Instant) -> Ended {
        let e = match self.end_transaction(writer, true).await {
            Ok(begun) => {
                self.requeue(writer, begun, opened);
                return Ended::Committed;
            }
            Err(e) => e,
        };
        // The transaction's own error says more than a delivery's.
        let cause = Arc::new(BridgeError::Kafka(e.clone()));
        match &e {
            // librdkafka: the commit did not happen; abort and go on.
            KafkaError::Transaction(t) if t.txn_requires_abort() && !t.is_fatal() => {
                self.abort(writer, cause, opened).await
            }
            // A fatal error does not say whether an earlier attempt of
            // this commit reached the coordinator: only reading back
            // settles it. Fenced by another process: stop. Otherwise
            // (seen: INVALID_TXN_STATE after Kafka was away past the
            // transaction timeout) a new producer under the same id
            // settles the transaction as a restart would, without one.
            _ => {
                self.retire(writer, "commit_transaction", &e, opened);
                Ended::Unknown(cause)
            }
        }
    }

    /// Aborts the writer's transaction; the commit was never asked for, or
    /// failed in a way that says it did not happen. The group's records
    /// can then never become visible, whatever `abort_transaction` says.
    ///
    /// An abort that fails leaves the writer in a state librdkafka will not
    /// take a new transaction in (seen: a topic without the Write ACL
    /// failed AddPartitionsToTxn, and the abort then got "invalid state").
    /// The open transaction can still only abort, so the writer is
    /// replaced in-process: a new producer with the same id, whose
    /// `init_transactions` fences the old one and aborts what it left
    /// open. Only a writer fenced by another process stops the bridge
    /// (replacing it would fence that process back).
    async fn abort(
        self: &Arc<Self>,
        writer: &Arc<Writer>,
        cause: Arc<BridgeError>,
        opened: Instant,
    ) -> Ended {
        match self.end_transaction(writer, false).await {
            Ok(begun) => self.requeue(writer, begun, opened),
            Err(e) => self.retire(writer, "abort_transaction", &e, opened),
        }
        Ended::Aborted(cause)
    }

    /// Whether `e` says another process took the writer's id, so that this
    /// one must stop rather than take it back. Kafka fences a writer with
    /// the same error in two cases: another producer initialised the id,
    /// or the coordinator aborted a transaction of this writer that
    /// outlived `kafka.transactions.timeout` (it bumps the epoch; seen: a
    /// replica frozen past the timeout, whose librdkafka then bumped the
    /// epoch itself after the timed-out records and read "fenced by a
    /// newer instance"). A transaction opened (`opened`) longer ago than
    /// the timeout tells the second case, and the writer is replaced then.
    fn fenced_by_another(&self, e: &KafkaError, opened: Instant) -> bool {
        fenced(e) && opened.elapsed() < self.timeout
    }

    /// Returns a writer whose transaction (opened at `opened`) ended to the
    /// free ones, its next transaction begun (`begun`: how that went). A
    /// writer that could not begin one is retired (see `retire`).
    fn requeue(self: &Arc<Self>, writer: &Arc<Writer>, begun: KafkaResult<()>, opened: Instant) {
        match begun {
            Ok(()) => {
                let _ = self.free_tx.send(writer.clone());
            }
            Err(e) => self.retire(writer, "begin_transaction", &e, opened),
        }
    }

    /// A writer whose `call` failed with `e` in a transaction opened at
    /// `opened`: lost (the bridge stops) if another process fenced it,
    /// replaced otherwise.
    fn retire(self: &Arc<Self>, writer: &Arc<Writer>, call: &str, e: &KafkaError, opened: Instant) {
        let why = format!("{call} failed: {e}");
        if self.fenced_by_another(e, opened) {
            self.writer_lost(writer, &why);
        } else {
            self.replace_writer(writer, &why);
        }
    }

    /// A writer librdkafka will take no new transaction on, but which no
    /// other process fenced: a new producer under the same id takes its
    /// place (its `init_transactions` fences this one and ends what it
    /// left open). `why` is the failure that made it unusable.
    fn replace_writer(self: &Arc<Self>, writer: &Arc<Writer>, why: &str) {
        match self.replacement(writer) {
            Ok(new) => {
                events::transactional_writer_replaced(&writer.id, why);
                self.ready_writers.fetch_sub(1, Ordering::AcqRel);
                tokio::spawn(self.clone().initialise(new));
            }
            Err(made) => self.writer_lost(writer, &format!("{why}; no new producer: {made}")),
        }
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
}

impl GroupCommit {
    /// A record librdkafka purged after the authorizer refused to add its
    /// topic to the transaction (the refusal is only in librdkafka's log,
    /// which names the topic): the denial, naming the ACL.
    fn denied_or(&self, e: Arc<BridgeError>, topic: &str) -> Arc<BridgeError> {
        if purged(&e) && self.events.write_denied_within(topic, self.timeout) {
            return Arc::new(BridgeError::WriteDenied {
                topic: topic.to_string(),
            });
        }
        e
    }
}

/// A record librdkafka purged unsent or unanswered (its transaction
/// failed, or the producer is closing).
fn purged(e: &BridgeError) -> bool {
    matches!(e, BridgeError::Kafka(k) if matches!(
        k.rdkafka_error_code(),
        Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
    ))
}

/// Kafka fenced the writer: another producer holds its transactional id
/// now, or the coordinator timed its transaction out (see
/// `GroupCommit::fenced_by_another`).
fn fenced(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fenced
        )
    )
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
