//! The ledger follower: makes sure the topic exists, reads it from the
//! start into the duplicates memory, says when it has caught up
//! (readiness), then follows it, partitions added later included.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::dedup::ledger::catch_up::CatchUp;
use crate::dedup::ledger::parse_entries;
use crate::dedup::{Dedup, DedupConfig};
use crate::kafka::client::{KafkaContext, reader_config};
use crate::kafka::topics::{TopicSpec, Topics};
use crate::kafka::{KafkaConfig, partitions_of};
use crate::signal::Signal;
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

/// Readiness of the ledger follower.
#[derive(Default)]
pub struct LedgerState {
    caught_up: AtomicBool,
    problem: std::sync::Mutex<Option<String>>,
}

impl LedgerState {
    pub(crate) fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Why the ledger is not ready, when it is not.
    pub fn problem(&self) -> Option<String> {
        if self.caught_up() {
            return None;
        }
        let p = self.problem.lock().ok().and_then(|p| p.clone());
        Some(p.unwrap_or_else(|| "duplicates ledger not caught up".into()))
    }

    /// The ledger cannot be read now (`why`): not ready until it is read
    /// to the end again.
    fn not_caught_up(&self, why: Option<String>) {
        self.caught_up.store(false, Ordering::Release);
        self.set_problem(why);
    }

    fn set_problem(&self, p: Option<String>) {
        if let Ok(mut slot) = self.problem.lock() {
            *slot = p;
        }
    }
}

/// The task that reads the ledger into this replica's memory and follows
/// it (see [`Follower::run`]).
pub(crate) struct Follower {
    pub(crate) kafka: KafkaConfig,
    pub(crate) dedup_cfg: DedupConfig,
    pub(crate) topics: Arc<Topics>,
    pub(crate) dedup: Arc<Dedup>,
    pub(crate) state: Arc<LedgerState>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Follower {
    /// Makes sure the ledger exists, reads it from the start into the
    /// duplicate memory, marks readiness once caught up, then follows it
    /// until shutdown.
    pub(crate) async fn run(self, mut shutdown: Signal) {
        let topic = self.dedup_cfg.ledger_topic.clone();
        let spec = TopicSpec {
            name: topic.clone(),
            partitions: self.dedup_cfg.ledger_partitions,
            settings: self.ledger_settings(),
        };
        let retry = self.kafka.health_interval;
        // 1. The topic exists.
        loop {
            match self
                .topics
                .ensure_special(&spec, self.dedup_cfg.create_ledger)
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    let hint = if self.dedup_cfg.create_ledger {
                        String::new()
                    } else {
                        " (create it with cleanup.policy=delete, or set dedup.create_ledger = true)"
                            .into()
                    };
                    warn!(ledger = %topic, error = %e, "duplicates ledger unavailable{hint}; not ready");
                    self.state
                        .set_problem(Some(format!("duplicates ledger {topic}: {e}")));
                }
            }
            if shutdown.sleep(retry).await {
                return;
            }
        }
        self.state.set_problem(None);

        // 2. Where it ends now, and a consumer on all of it.
        let (consumer, ends) = loop {
            match self.assign(&topic).await {
                Ok(x) => break x,
                Err(e) => {
                    warn!(ledger = %topic, error = %e, "cannot read the duplicates ledger; retrying");
                    self.state
                        .set_problem(Some(format!("duplicates ledger {topic}: {e}")));
                }
            }
            if shutdown.sleep(retry).await {
                return;
            }
        };
        let mut progress = CatchUp::new(ends);
        // A refusal is logged when it starts, not at every fetch.
        let mut refusal_said = false;
        let consumer = Arc::new(consumer);
        let mut assigned = assigned_partitions(&consumer);
        let started = Instant::now();
        let mut read = 0u64;

        // 3. Read and follow; expire old identities as time passes; pick up
        //    partitions added to the topic.
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_expire = Instant::now();
        let mut last_refresh = Instant::now();
        loop {
            tokio::select! {
                msg = consumer.recv() => match msg {
                    Ok(m) => {
                        read += 1;
                        let now = SystemTime::now();
                        let at = m
                            .timestamp()
                            .to_millis()
                            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
                            .map_or(now, |at| clamp_to(at, now));
                        // This replica's own records list events its memory
                        // took in when Kafka confirmed them.
                        if let Some(value) = m.payload()
                            && !m.key().is_some_and(|k| self.dedup.own_ledger_record(k))
                        {
                            self.dedup.remember_all(parse_entries(value), at);
                        }
                        progress.record(m.partition(), m.offset());
                    }
                    Err(KafkaError::PartitionEOF(p)) => progress.end_reached(p),
                    // The group only finds a coordinator; the reads go on
                    // (assigned partitions). The context named it.
                    Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed) => {}
                    Err(e) if progress.refused_by(&e, &topic) => {
                        if self.state.caught_up() || !refusal_said {
                            events::ledger_read_refused(&self.metrics, &topic, progress.refused().unwrap_or_default());
                            refusal_said = true;
                        }
                        self.state.not_caught_up(progress.refused().map(str::to_string));
                    }
                    Err(e) => {
                        warn!(ledger = %topic, error = %e, "reading the duplicates ledger failed; retrying");
                        continue;
                    }
                },
                _ = tick.tick() => {
                    if last_expire.elapsed() >= Duration::from_secs(30) {
                        self.dedup.expire(SystemTime::now());
                        last_expire = Instant::now();
                    }
                    if last_refresh.elapsed() >= self.kafka.health_interval {
                        last_refresh = Instant::now();
                        match self.add_new_partitions(&consumer, &topic, &assigned).await {
                            Ok(Some(now_assigned)) => {
                                info!(ledger = %topic, partitions = now_assigned.len(), "duplicates ledger gained partitions; reading them from the start");
                                assigned = now_assigned;
                            }
                            Ok(None) => {}
                            Err(e) => warn!(ledger = %topic, error = %e, "cannot refresh the duplicates ledger's partitions; retrying"),
                        }
                    }
                }
                _ = shutdown.fired() => return,
            }
            if progress.caught_up() && !self.state.caught_up() {
                refusal_said = false;
                self.mark_caught_up(&topic, read, started);
            }
        }
    }

    /// When the topic has partitions the consumer is not assigned, assigns
    /// all of them: the known ones at the consumer's position, the new ones
    /// from the beginning. Returns the new assignment, if it changed.
    async fn add_new_partitions(
        &self,
        consumer: &Arc<StreamConsumer<KafkaContext>>,
        topic: &str,
        assigned: &BTreeSet<i32>,
    ) -> Result<Option<BTreeSet<i32>>, String> {
        let (consumer, topic, timeout, assigned) = (
            consumer.clone(),
            topic.to_string(),
            self.kafka.admin_timeout,
            assigned.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let all = partitions_of(&*consumer, &topic, timeout)?;
            if all.iter().all(|p| assigned.contains(p)) {
                return Ok(None);
            }
            let positions = consumer.position().map_err(|e| e.to_string())?;
            let mut tpl = TopicPartitionList::new();
            for &p in &all {
                let at = positions
                    .find_partition(&topic, p)
                    .map(|e| e.offset())
                    .filter(|o| matches!(o, Offset::Offset(_)))
                    .unwrap_or(Offset::Beginning);
                tpl.add_partition_offset(&topic, p, at)
                    .map_err(|e| e.to_string())?;
            }
            consumer.assign(&tpl).map_err(|e| e.to_string())?;
            Ok(Some(all))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    fn mark_caught_up(&self, topic: &str, read: u64, started: Instant) {
        self.state.caught_up.store(true, Ordering::Release);
        self.state.set_problem(None);
        events::ledger_caught_up(&self.metrics, topic, read, started.elapsed());
    }

    fn ledger_settings(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        if let Some(isr) = self.topics.settings().settings.get("min.insync.replicas") {
            s.insert("min.insync.replicas".to_string(), isr.clone());
        }
        s.insert("cleanup.policy".into(), "delete".into());
        s.insert(
            "retention.ms".into(),
            (self.dedup_cfg.window.as_millis() * 2).to_string(),
        );
        s
    }

    /// A consumer assigned to every ledger partition from the beginning,
    /// and, per partition, the end offset to reach.
    async fn assign(
        &self,
        topic: &str,
    ) -> Result<(StreamConsumer<KafkaContext>, BTreeMap<i32, i64>), String> {
        let group = format!("{}-ledger", self.kafka.client_id);
        // Lines of a transaction that aborted were never true (their
        // events are not in Kafka), and the end of a partition says it was
        // read (see `CatchUp`): both from `reader_config`.
        let mut cfg = reader_config(&self.kafka, &group);
        // Ledger records are small; librdkafka's default pre-fetch
        // buffer (64 MiB a partition) would only cost memory.
        cfg.set("queued.max.messages.kbytes", "2048")
            .set("fetch.max.bytes", "4194304");
        // The bridge's context: librdkafka's lines share the log throttle.
        let consumer: StreamConsumer<KafkaContext> = cfg
            .create_with_context(self.topics.client_context().in_group(&group, "Describe"))
            .map_err(|e| e.to_string())?;
        let timeout = self.kafka.admin_timeout;
        let topic_owned = topic.to_string();
        let (consumer, ends) = tokio::task::spawn_blocking(move || {
            let all = partitions_of(&consumer, &topic_owned, timeout)?;
            let mut ends = BTreeMap::new();
            let mut tpl = TopicPartitionList::new();
            for p in all {
                let (low, high) = consumer
                    .fetch_watermarks(&topic_owned, p, timeout)
                    .map_err(|e| e.to_string())?;
                ends.insert(p, high.max(low));
                tpl.add_partition_offset(&topic_owned, p, Offset::Beginning)
                    .map_err(|e| e.to_string())?;
            }
            consumer.assign(&tpl).map_err(|e| e.to_string())?;
            Ok::<_, String>((consumer, ends))
        })
        .await
        .map_err(|e| e.to_string())??;
        Ok((consumer, ends))
    }
}

/// The partitions the consumer is assigned.
fn assigned_partitions(consumer: &StreamConsumer<KafkaContext>) -> BTreeSet<i32> {
    consumer
        .assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// A ledger record's time as this replica may use it: never later than its
/// own clock. A writer whose clock runs ahead would otherwise make every
/// fresh confirmation here look older than the window, and be dropped.
fn clamp_to(at: SystemTime, now: SystemTime) -> SystemTime {
    at.min(now)
}

#[cfg(test)]
mod tests;
