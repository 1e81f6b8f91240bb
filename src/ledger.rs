//! The duplicates ledger: a Kafka topic recording which events have been
//! published, shared by every replica, kept in Kafka so no other
//! infrastructure is needed.
//!
//! - **Record:** a batch of events confirmed within a couple of
//!   milliseconds (up to 512): key = the first event's 128-bit identity
//!   digest; value = one line per event saying where it landed,
//!   `<digest hex> <partition> <offset> <topic> <id>`; timestamp = when the
//!   batch was written. Written only *after* each event's own write was
//!   confirmed (see the crash points in [`crate::dedup`]). Batching makes
//!   the ledger cost a fraction of a produce per event instead of a whole
//!   one (measured: the bench in the README).
//! - **Topic:** `cleanup.policy=compact,delete` with `retention.ms` twice the
//!   window. Deletion bounds the topic to the window; compaction only
//!   merges the rare batch that repeats a key.
//! - **Following:** every replica reads every partition from the start
//!   (no consumer group: each needs all of it), then keeps following. It
//!   is not ready until it has read up to the end offsets it saw on boot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::fmt::Write as _;
use tokio::sync::mpsc;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{DedupConfig, KafkaConfig};
use crate::dedup::Dedup;
use crate::metrics::Metrics;
use crate::publish::{KafkaContext, Producer, Receipt, base_client_config};
use crate::topics::{TopicSpec, Topics};

/// Entries waiting for the writer at most; beyond it an entry is dropped
/// and counted (its event may later be published again, never lost).
const QUEUE: usize = 65_536;
/// Entries in one ledger record at most.
const BATCH: usize = 512;
/// How long the writer waits to fill a batch. Adds at most this much to
/// the time a copy on another replica could slip through.
const LINGER: Duration = Duration::from_millis(2);

/// One published event, for the ledger.
pub struct Entry {
    pub digest: u128,
    pub id: String,
    pub topic: Arc<str>,
    pub receipt: Receipt,
}

/// Hands confirmed events to the ledger writer.
pub struct Ledger {
    tx: mpsc::Sender<Entry>,
    metrics: Arc<Metrics>,
}

impl Ledger {
    /// Starts the writer task; it stops, after writing what it holds, when
    /// `shutdown` turns.
    pub fn start(
        topic: &str,
        producer: Producer,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> (Ledger, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            topic: topic.into(),
            producer,
            metrics: metrics.clone(),
        };
        let task = tokio::spawn(writer.run(rx, shutdown));
        (Ledger { tx, metrics }, task)
    }

    /// Queues an event Kafka confirmed. Never waits.
    pub fn record(&self, entry: Entry) {
        if let Err(e) = self.tx.try_send(entry) {
            let entry = match e {
                mpsc::error::TrySendError::Full(e) | mpsc::error::TrySendError::Closed(e) => e,
            };
            failed(
                &self.metrics,
                1,
                &format!("ledger queue unavailable (event {})", entry.id),
            );
        }
    }
}

struct Writer {
    topic: Arc<str>,
    producer: Producer,
    metrics: Arc<Metrics>,
}

impl Writer {
    /// Collects entries into batches — one Kafka record carries many
    /// identities, so the ledger costs a fraction of a produce per event —
    /// and writes each batch without waiting for the previous one.
    async fn run(self, mut rx: mpsc::Receiver<Entry>, mut shutdown: watch::Receiver<bool>) {
        let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
        loop {
            let first = tokio::select! {
                e = rx.recv() => e,
                _ = shutdown.changed() => {
                    rx.close();
                    while let Ok(e) = rx.try_recv() {
                        batch.push(e);
                        if batch.len() == BATCH {
                            self.write(std::mem::take(&mut batch)).await;
                        }
                    }
                    if !batch.is_empty() {
                        self.write(batch).await;
                    }
                    return;
                }
            };
            let Some(first) = first else { return };
            batch.push(first);
            let until = Instant::now() + LINGER;
            while batch.len() < BATCH {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(e)) => batch.push(e),
                    _ => break,
                }
            }
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            let (producer, topic, metrics) = (
                self.producer.clone(),
                self.topic.clone(),
                self.metrics.clone(),
            );
            tokio::spawn(async move {
                Writer {
                    topic,
                    producer,
                    metrics,
                }
                .write(full)
                .await
            });
        }
    }

    /// One record: key = the first identity; value = one line per event,
    /// `<digest hex> <partition> <offset> <topic> <id>`, readable with any
    /// console consumer. A failure is logged and counted, not retried: its
    /// worst consequence is that a later copy is published again.
    async fn write(&self, batch: Vec<Entry>) {
        let Some(first) = batch.first() else { return };
        let key = first.digest.to_be_bytes();
        let mut value = String::with_capacity(batch.len() * 96);
        for e in &batch {
            let _ = writeln!(
                value,
                "{:032x} {} {} {} {}",
                e.digest, e.receipt.partition, e.receipt.offset, e.topic, e.id
            );
        }
        let rec: FutureRecord<'_, [u8], str> =
            FutureRecord::to(&self.topic).key(&key[..]).payload(&value);
        let n = batch.len() as u64;
        let report = match self.producer.send_result(rec) {
            Ok(r) => r,
            Err((e, _)) => return failed(&self.metrics, n, &e.to_string()),
        };
        match report.await {
            Ok(Ok(_)) => self.metrics.dedup_ledger_writes.inc_by(n),
            Ok(Err((e, _))) => failed(&self.metrics, n, &e.to_string()),
            Err(_) => failed(&self.metrics, n, "producer shut down"),
        }
    }
}

fn failed(metrics: &Metrics, events: u64, error: &str) {
    metrics.dedup_ledger_write_failures.inc_by(events);
    warn!(
        events,
        error,
        "could not record events in the duplicates ledger; later copies of them would be published again"
    );
}

/// Parses a ledger record's value: the identity digests it lists.
pub fn parse_entries(value: &[u8]) -> impl Iterator<Item = u128> + '_ {
    value.split(|&b| b == b'\n').filter_map(|line| {
        let hex = line.split(|&b| b == b' ').next()?;
        u128::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    })
}

/// Readiness of the ledger follower.
#[derive(Default)]
pub struct LedgerState {
    caught_up: AtomicBool,
    problem: std::sync::Mutex<Option<String>>,
}

impl LedgerState {
    pub fn caught_up(&self) -> bool {
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

    fn set_problem(&self, p: Option<String>) {
        if let Ok(mut slot) = self.problem.lock() {
            *slot = p;
        }
    }
}

pub struct Follower {
    pub kafka: KafkaConfig,
    pub dedup_cfg: DedupConfig,
    pub topics: Arc<Topics>,
    pub dedup: Arc<Dedup>,
    pub state: Arc<LedgerState>,
    pub metrics: Arc<Metrics>,
}

impl Follower {
    /// Makes sure the ledger exists, reads it from the start into the
    /// duplicate memory, marks readiness once caught up, then follows it
    /// until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
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
                        " (create it with cleanup.policy=compact,delete, or set dedup.create_ledger = true)".into()
                    };
                    warn!(ledger = %topic, error = %e, "duplicates ledger unavailable{hint}; not ready");
                    self.state
                        .set_problem(Some(format!("duplicates ledger {topic}: {e}")));
                }
            }
            if sleep_or_stop(retry, &mut shutdown).await {
                return;
            }
        }
        self.state.set_problem(None);

        // 2. Where it ends now, and a consumer on all of it.
        let (consumer, mut behind) = loop {
            match self.assign(&topic).await {
                Ok(x) => break x,
                Err(e) => {
                    warn!(ledger = %topic, error = %e, "cannot read the duplicates ledger; retrying");
                    self.state
                        .set_problem(Some(format!("duplicates ledger {topic}: {e}")));
                }
            }
            if sleep_or_stop(retry, &mut shutdown).await {
                return;
            }
        };
        let started = Instant::now();
        let mut read = 0u64;
        if behind.is_empty() {
            self.mark_caught_up(&topic, read, started);
        }

        // 3. Read and follow; expire old identities as time passes.
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_expire = Instant::now();
        loop {
            tokio::select! {
                msg = consumer.recv() => match msg {
                    Ok(m) => {
                        read += 1;
                        let at = m
                            .timestamp()
                            .to_millis()
                            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
                            .unwrap_or_else(SystemTime::now);
                        if let Some(value) = m.payload() {
                            self.dedup.remember_all(parse_entries(value), at);
                        }
                        if behind.get(&m.partition()).is_some_and(|&end| m.offset() + 1 >= end) {
                            behind.remove(&m.partition());
                        }
                        if !behind.is_empty() {
                            continue;
                        }
                    }
                    Err(e) => {
                        warn!(ledger = %topic, error = %e, "reading the duplicates ledger failed; retrying");
                        continue;
                    }
                },
                _ = tick.tick() => {
                    // Records at the end of a partition may have been
                    // compacted away: trust the consumer's position too.
                    if !behind.is_empty()
                        && let Ok(pos) = consumer.position()
                    {
                        for e in pos.elements() {
                            if let (Offset::Offset(o), Some(&end)) = (e.offset(), behind.get(&e.partition()))
                                && o >= end
                            {
                                behind.remove(&e.partition());
                            }
                        }
                    }
                    if last_expire.elapsed() >= Duration::from_secs(30) {
                        self.dedup.expire(SystemTime::now());
                        last_expire = Instant::now();
                    }
                }
                _ = shutdown.changed() => return,
            }
            if behind.is_empty() && !self.state.caught_up() {
                self.mark_caught_up(&topic, read, started);
            }
        }
    }

    fn mark_caught_up(&self, topic: &str, read: u64, started: Instant) {
        self.state.caught_up.store(true, Ordering::Release);
        self.metrics.dedup_ledger_caught_up.set(1);
        self.state.set_problem(None);
        info!(
            ledger = topic,
            records = read,
            seconds = started.elapsed().as_secs_f64(),
            "duplicates ledger caught up; ready"
        );
    }

    fn ledger_settings(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        if let Some(isr) = self.topics.settings().settings.get("min.insync.replicas") {
            s.insert("min.insync.replicas".to_string(), isr.clone());
        }
        s.insert("cleanup.policy".into(), "compact,delete".into());
        s.insert(
            "retention.ms".into(),
            (self.dedup_cfg.window.as_millis() * 2).to_string(),
        );
        s
    }

    /// A consumer assigned to every ledger partition from the beginning,
    /// and, per non-empty partition, the end offset to reach.
    async fn assign(
        &self,
        topic: &str,
    ) -> Result<(StreamConsumer<KafkaContext>, BTreeMap<i32, i64>), String> {
        let mut cfg = base_client_config(&self.kafka);
        cfg.set("group.id", format!("{}-ledger", self.kafka.client_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // Ledger records are small; librdkafka's default pre-fetch
            // buffer (64 MiB a partition) would only cost memory.
            .set("queued.max.messages.kbytes", "2048")
            .set("fetch.max.bytes", "4194304");
        // The bridge's context: librdkafka's lines share the log throttle.
        let consumer: StreamConsumer<KafkaContext> = cfg
            .create_with_context(self.topics.client_context())
            .map_err(|e| e.to_string())?;
        let timeout = self.kafka.admin_timeout;
        let topic_owned = topic.to_string();
        let (consumer, ends) = tokio::task::spawn_blocking(move || {
            let md = consumer
                .fetch_metadata(Some(&topic_owned), timeout)
                .map_err(|e| e.to_string())?;
            let partitions: Vec<i32> = md
                .topics()
                .iter()
                .find(|t| t.name() == topic_owned)
                .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                .unwrap_or_default();
            if partitions.is_empty() {
                return Err(format!("topic {topic_owned} has no partitions"));
            }
            let mut ends = BTreeMap::new();
            let mut tpl = TopicPartitionList::new();
            for p in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(&topic_owned, p, timeout)
                    .map_err(|e| e.to_string())?;
                if high > low {
                    ends.insert(p, high);
                }
                tpl.add_partition_offset(&topic_owned, p, Offset::Beginning)
                    .map_err(|e| e.to_string())?;
            }
            consumer.assign(&tpl).map_err(|e| e.to_string())?;
            Ok((consumer, ends))
        })
        .await
        .map_err(|e| e.to_string())??;
        Ok((consumer, ends))
    }
}

/// Sleeps, or returns true at once when shutdown was signalled.
async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_back_from_the_written_lines() {
        let mut value = String::new();
        for (d, id) in [(0x1u128, "m-1"), (u128::MAX, "content:ab cd")] {
            let _ = writeln!(value, "{d:032x} 3 42 popbill.taxinvoice.state.issue {id}");
        }
        value.push_str("not a digest line\n\n");
        let got: Vec<u128> = parse_entries(value.as_bytes()).collect();
        assert_eq!(got, vec![1, u128::MAX]);
    }
}
