//! Creating what is missing: the routed topics, the fallback and the
//! dead-letter topic (with the configured partitions, replication and
//! settings), and the special topics (the duplicates ledger); and, when
//! Kafka refuses, the cause with the setting that fixes it.

use super::*;

/// Whether Kafka's answer to a topic's creation says only that it did not
/// finish (a busy or moving controller, a timeout, a quota), not that it
/// will not: the topic is left missing, without a cause, and the next
/// delivery or readiness round asks again. Recorded as a refusal, such an
/// answer would have every delivery routed there answered at once with
/// "cannot be created" until the next round, for a fault that passes.
pub(super) fn creation_unfinished(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::RequestTimedOut
            | C::NotController
            | C::NetworkException
            | C::BrokerNotAvailable
            | C::LeaderNotAvailable
            | C::ThrottlingQuotaExceeded
            | C::KafkaStorageError
            | C::OperationTimedOut
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::TimedOutQueue
    )
}

impl Topics {
    /// Why Kafka refused to create a topic, with the setting to change.
    pub(super) fn creation_cause(&self, code: RDKafkaErrorCode) -> String {
        let rf = self.settings.replication_factor;
        let brokers = self.brokers.load(Ordering::Acquire);
        let plural = if brokers == 1 { "" } else { "s" };
        use RDKafkaErrorCode as C;
        match code {
            C::InvalidReplicationFactor if brokers > 0 && rf > brokers as i32 => format!(
                "the cluster has {brokers} broker{plural}; set topics.replication_factor = {brokers} \
                 (it is {rf}), or -1 for the broker's default"
            ),
            C::InvalidReplicationFactor => format!(
                "Kafka refused replication factor {rf} ({code}); set topics.replication_factor to \
                 at most the number of brokers, or -1 for the broker's default"
            ),
            C::InvalidPartitions => format!(
                "Kafka refused {} partitions ({code}); set topics.partitions to at least 1, or -1 \
                 for the broker's default",
                self.settings.partitions
            ),
            C::InvalidConfig => {
                format!("Kafka refused a topic setting ({code}); check topics.settings")
            }
            C::PolicyViolation => format!(
                "the cluster's topic-creation policy refused it ({code}); create the topic by \
                 hand, or fit topics.partitions, topics.replication_factor and topics.settings \
                 to the policy"
            ),
            C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed => format!(
                "the bridge may not create topics ({code}); create the topic by hand, grant \
                 the bridge's principal Create on it (docs/deploy.md, ACLs), or set \
                 topics.create = false"
            ),
            _ => format!("Kafka refused to create it ({code})"),
        }
    }

    pub(super) async fn create(&self, names: &[Arc<str>], budget: Duration) -> Result<(), String> {
        // Large enough for every body the bridge accepts (the broker's
        // default, 1 MiB + 12 bytes, is not); a larger value from
        // topics.settings is kept.
        let mut settings = self.settings.settings.clone();
        let given = settings
            .get("max.message.bytes")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        settings.insert(
            "max.message.bytes".into(),
            self.needs.record_bytes.max(given).to_string(),
        );
        let specs: Vec<TopicSpec> = names
            .iter()
            .map(|n| TopicSpec {
                name: n.to_string(),
                partitions: self.settings.partitions,
                settings: settings.clone(),
            })
            .collect();
        self.create_specs(&specs, budget).await
    }

    /// Makes sure a topic outside the routes (the duplicates ledger)
    /// exists, creating it with its own spec when `create` is set.
    pub(crate) async fn ensure_special(
        &self,
        spec: &TopicSpec,
        create: bool,
    ) -> Result<(), String> {
        let metadata = self
            .fetch_metadata(self.admin_timeout)
            .await
            .map_err(|e| format!("Kafka metadata request failed: {e}"))?;
        let exists = |m: &Metadata| {
            m.topics()
                .iter()
                .any(|t| t.name() == spec.name && !t.partitions().is_empty())
        };
        if !exists(&metadata) {
            if !create {
                return Err(format!(
                    "topic {} does not exist and creating it is turned off",
                    spec.name
                ));
            }
            // The broker count explains a refused replication factor.
            self.brokers
                .store(metadata.brokers().len(), Ordering::Release);
            let _guard = self.ensure_lock.lock().await;
            self.create_specs(std::slice::from_ref(spec), self.admin_timeout)
                .await?;
        }
        // Written to only once each partition answers (see `serving`).
        self.wait_serving(&spec.name, 0, self.admin_timeout)
            .await
            .map(drop)
            .map_err(|cause| format!("topic {} does not serve yet: {cause}", spec.name))
    }

    /// [`serving::wait_serving`] on the admin client (never the producer:
    /// see `Topics::admin`), off the async workers (librdkafka's metadata
    /// and watermark calls block).
    pub(super) async fn wait_serving(
        &self,
        topic: &str,
        from: usize,
        budget: Duration,
    ) -> Result<usize, String> {
        let (admin, topic) = (self.admin.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            serving::wait_serving(admin.inner(), &topic, from, budget)
        })
        .await
        .unwrap_or_else(|e| Err(format!("the check did not finish: {e}")))
    }

    /// Creates the topics; fails with each topic not created and why.
    /// Causes of routed topics are also kept for readiness and answers.
    async fn create_specs(&self, specs: &[TopicSpec], budget: Duration) -> Result<(), String> {
        let new: Vec<NewTopic<'_>> = specs
            .iter()
            .map(|spec| {
                let replication = TopicReplication::Fixed(self.settings.replication_factor);
                let mut t = NewTopic::new(&spec.name, spec.partitions, replication);
                for (k, v) in &spec.settings {
                    t = t.set(k, v);
                }
                t
            })
            .collect();
        let opts = AdminOptions::new()
            .request_timeout(Some(budget))
            .operation_timeout(Some(budget));
        let results = match self.admin.create_topics(new.iter(), &opts).await {
            Ok(r) => r,
            Err(e) => {
                let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                warn!(error = %e, topics = ?names, "creating topics failed");
                return Err(format!("creating topics failed: {e}"));
            }
        };
        let failed: Vec<String> = results
            .iter()
            .filter_map(|r| match r {
                Ok(name) => self.note_creation(name, Ok(true)),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    self.note_creation(name, Ok(false))
                }
                Err((name, code)) => self.note_creation(name, Err(*code)),
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    /// Records Kafka's answer to one topic's creation (`Ok(created)`, or
    /// the error code) in the topic's state; says why when it failed.
    pub(super) fn note_creation(
        &self,
        name: &str,
        outcome: Result<bool, RDKafkaErrorCode>,
    ) -> Option<String> {
        let state = self.all.iter().find(|t| &*t.name == name);
        match outcome {
            Ok(created) => {
                if created {
                    info!(
                        topic = name,
                        replication_factor = self.settings.replication_factor,
                        "created topic"
                    );
                }
                // Created is not serving yet: the leaders may still answer
                // NOT_LEADER (see `serving`).
                if let Some(t) = state {
                    t.set_cause(None);
                    t.set_unfinished(None);
                    t.state.store(NOT_SERVING, Ordering::Release);
                }
                None
            }
            Err(code) if creation_unfinished(code) => {
                let why = format!("creating it did not finish ({code}); asked again");
                match state {
                    // Logged by set_unfinished, on change only. A refusal
                    // said before stays: this answer does not contradict it.
                    Some(t) => t.set_unfinished(Some(why.clone())),
                    None => {
                        warn!(topic = name, cause = %why, "Kafka did not finish creating the topic")
                    }
                }
                Some(format!("topic {name}: {why}"))
            }
            Err(code) => {
                let cause = self.creation_cause(code);
                match state {
                    // Logged by set_cause, on change only.
                    Some(t) => {
                        t.set_unfinished(None);
                        t.set_cause(Some(cause.clone()));
                    }
                    None => warn!(topic = name, cause = %cause, "could not create topic"),
                }
                Some(format!("could not create topic {name}: {cause}"))
            }
        }
    }
}
