//! A writer's start: `init_transactions` until Kafka grants its
//! transactional id (fencing any former holder and settling what it left
//! open), with readiness saying why while it does not.

use super::*;

impl GroupCommit {
    /// `init_transactions` until it succeeds: the writer then joins the
    /// free ones. Until the first does, readiness says why.
    pub(super) async fn initialise(self: Arc<Self>, mut writer: Arc<Writer>) {
        let mut pause = Duration::from_millis(500);
        // Said once per writer and cause, not at every attempt (four
        // writers retrying filled the log while an ACL was missing);
        // readiness keeps saying it.
        let mut said: Option<String> = None;
        loop {
            if self.is_closing() {
                return;
            }
            let w = writer.clone();
            let timeout = self.kafka.admin_timeout.max(Duration::from_secs(5));
            // Its first transaction begun too: free writers have theirs
            // begun (see `requeue`).
            // A begin that fails after the init succeeded leaves a producer
            // whose init cannot be repeated: it is replaced, as after a
            // fatal error (`spoiled`).
            let result = tokio::task::spawn_blocking(move || {
                w.producer
                    .init_transactions(timeout)
                    .map_err(|e| (e, false))?;
                w.producer.begin_transaction().map_err(|e| (e, true))
            })
            .await;
            match result {
                Ok(Ok(())) => {
                    if self.ready_writers.fetch_add(1, Ordering::AcqRel) + 1 >= self.producers {
                        self.all_ready_once.store(true, Ordering::Release);
                    }
                    if let Ok(mut p) = self.init_problem.lock() {
                        *p = None;
                    }
                    events::transactional_writer_ready(&writer.id);
                    let _ = self.free_tx.send(writer);
                    // The committer may be waiting for a free writer.
                    self.commit_ended.notify_waiters();
                    return;
                }
                Ok(Err((e, spoiled))) => {
                    let problem = describe_init_error(&writer.id, &e);
                    if said.as_deref() != Some(problem.as_str()) {
                        events::transactional_writer_refused(&writer.id, &problem);
                        said = Some(problem.clone());
                    }
                    if let Ok(mut p) = self.init_problem.lock() {
                        *p = Some(problem.clone());
                    }
                    // A fatal error (an ACL refusal is one) spoils this
                    // producer for good: the next attempt needs a new one.
                    if spoiled || is_fatal(&e) {
                        match self.replacement(&writer) {
                            Ok(w) => writer = w,
                            Err(made) => {
                                // Lost for good: the bridge stops rather
                                // than run on fewer writers unseen.
                                self.writer_lost(
                                    &writer,
                                    &format!("{problem}; no new producer: {made}"),
                                );
                                return;
                            }
                        }
                    }
                }
                // The blocking task failed: only while the runtime ends.
                Err(_) => return,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.kafka.health_interval.max(Duration::from_secs(1)));
        }
    }

    /// A new producer with the same `transactional.id`.
    pub(super) fn replacement(&self, old: &Writer) -> Result<Arc<Writer>, KafkaError> {
        Ok(Arc::new(Writer {
            producer: old.config.create_with_context(self.context.clone())?,
            id: old.id.clone(),
            config: old.config.clone(),
        }))
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
