//! The duplicates ledger: a Kafka topic recording which events have been
//! published, shared by every replica, kept in Kafka so no other
//! infrastructure is needed.
//!
//! - **Record:** a batch of events: key = the writer's random instance id
//!   and the batch's sequence number (unique, so no two batches ever share
//!   a key); value = one line per event saying what was published and
//!   where it landed, `<identity hex32> <body hex16> <partition> <offset>
//!   <topic> <id>`; timestamp = when the batch was written. With Kafka
//!   transactions a batch is a group's lines, written in the group's own
//!   transaction before Kafka said where each record landed (partition and
//!   offset are then `-`). Without them a batch gathers the events
//!   confirmed within a couple of milliseconds (up to 512), written only
//!   *after* each event's own write was confirmed (see the crash points in
//!   [`crate::dedup`]). Batching makes
//!   the ledger cost a fraction of a produce per event instead of a whole
//!   one (measured: the bench in the README).
//! - **Topic:** `cleanup.policy=delete` with `retention.ms` twice the
//!   window. Deletion bounds the topic to the window. (Compaction would
//!   buy nothing — every key is unique — and on a topic keyed by a batch's
//!   first identity, as earlier versions wrote, it deleted unrelated
//!   batches that happened to start with the same identity.)
//! - **Following:** every replica reads every partition from the start
//!   (no consumer group: each needs all of it), then keeps following. It
//!   is not ready until it has read up to the end offsets it saw on boot.
//!   Partitions added to the topic later are picked up from their start.
//!   A record's time is clamped to the reader's clock: a writer whose clock
//!   runs ahead must not make fresh confirmations look older than the
//!   window to everyone else. A replica's own records (their key starts
//!   with its writer's instance id) are skipped: their events went into its
//!   memory at confirmation, before the record was written.
//! - **Lines of earlier versions** (no body digest) are skipped: an
//!   identity without its body cannot vouch for a copy, and skipping costs
//!   at most one duplicate record.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::dedup::DedupConfig;
use crate::dedup::{Claim, Dedup};
use crate::kafka::client::{KafkaContext, Producer, base_client_config};
use crate::kafka::topics::{TopicSpec, Topics};
use crate::kafka::transactions::LedgerRecords;
use crate::kafka::{KafkaConfig, partitions_of};
use crate::labels::RecordWriter;
use crate::receipt::Receipt;
use crate::signal::Signal;
use crate::signal::{Trigger, signal};
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

/// Entries waiting for the writer at most; beyond it an entry is dropped
/// and counted (its event may later be published again, never lost).
const QUEUE: usize = 65_536;
/// Entries in one ledger record at most.
const BATCH: usize = 512;
/// Bytes of one ledger record's value at most: well under Kafka's
/// default record limit (1 MiB), whatever the senders chose as MIDs.
const BATCH_BYTES: usize = 256 * 1024;
/// Bytes of an event's id a ledger line keeps at most. The id is there
/// for people reading the ledger; the follower reads only the digests, so
/// a MID as long as the header limit allows (16 KiB) must not make the
/// record too large for Kafka.
const MAX_ID_IN_LINE: usize = 128;
/// How long the writer waits to fill a batch. Adds at most this much to
/// the time a copy on another replica could slip through.
const LINGER: Duration = Duration::from_millis(2);

/// One published event, for the ledger.
pub struct Entry {
    pub claim: Claim,
    pub id: String,
    pub topic: Arc<str>,
    pub receipt: Receipt,
}

/// Hands confirmed events to the ledger writer; or, with Kafka
/// transactions, makes the lines the group commit writes in each
/// transaction (then there is no writer task).
pub struct Ledger {
    /// The writer's queue; `None` when lines travel in transactions.
    tx: Option<mpsc::Sender<Entry>>,
    topic: Arc<str>,
    metrics: Arc<Metrics>,
    /// Events handed to Kafka whose delivery report has not been handled
    /// yet: each may still become a ledger entry, so shutdown waits for
    /// them before it stops the writer.
    pending: Arc<Outstanding>,
    /// This replica's record keys (its instance id and a sequence).
    keys: Arc<Keys>,
    /// Tells the writer to write what it holds and stop.
    stop: Trigger,
    /// The writer, awaited at shutdown.
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A count of delivery reports awaited, and a wake-up when it reaches
/// zero: two atomic operations a delivery, no channel.
#[derive(Default)]
struct Outstanding {
    n: AtomicUsize,
    zero: Notify,
}

/// One event awaiting its delivery report; see [`Ledger::expect`].
pub struct Pending(Arc<Outstanding>);

impl Drop for Pending {
    fn drop(&mut self) {
        if self.0.n.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.zero.notify_waiters();
        }
    }
}

impl Ledger {
    /// Starts the writer task; it stops, after writing what it holds, when
    /// [`Ledger::close`] is called.
    pub fn start(topic: &str, producer: Producer, metrics: Arc<Metrics>) -> Ledger {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop, stop_rx) = signal();
        let keys = Arc::new(Keys::new());
        let writer = Arc::new(Writer {
            topic: topic.into(),
            producer,
            metrics: metrics.clone(),
            keys: keys.clone(),
        });
        let task = tokio::spawn(writer.run(rx, stop_rx));
        Ledger {
            tx: Some(tx),
            topic: topic.into(),
            metrics,
            pending: Arc::default(),
            keys,
            stop,
            writer: std::sync::Mutex::new(Some(task)),
        }
    }

    /// A ledger whose lines the group commit writes, each in its event's
    /// transaction (`kafka.transactions`): no writer task.
    pub fn in_transactions(topic: &str, metrics: Arc<Metrics>) -> Ledger {
        let (stop, _) = signal();
        Ledger {
            tx: None,
            topic: topic.into(),
            metrics,
            pending: Arc::default(),
            keys: Arc::new(Keys::new()),
            stop,
            writer: std::sync::Mutex::new(None),
        }
    }

    /// Whether lines travel in the events' transactions.
    pub fn in_transaction(&self) -> bool {
        self.tx.is_none()
    }

    /// Where the group commit writes this ledger's records, with keys of
    /// this replica.
    pub(crate) fn records(&self) -> LedgerRecords {
        let keys = self.keys.clone();
        LedgerRecords {
            topic: self.topic.clone(),
            next_key: Box::new(move || keys.next()),
            max_bytes: BATCH_BYTES,
        }
    }

    /// Marks an event whose delivery report is awaited; drop the guard
    /// once the report was handled (and, if confirmed, recorded).
    pub fn expect(&self) -> Pending {
        self.pending.n.fetch_add(1, Ordering::AcqRel);
        Pending(self.pending.clone())
    }

    /// Waits, at most `within`, until every awaited delivery report was
    /// handled. Returns how many were still outstanding.
    pub async fn settled(&self, within: Duration) -> usize {
        let all_handled = async {
            loop {
                let zero = self.pending.zero.notified();
                tokio::pin!(zero);
                zero.as_mut().enable();
                if self.pending.n.load(Ordering::Acquire) == 0 {
                    return;
                }
                zero.await;
            }
        };
        let _ = tokio::time::timeout(within, all_handled).await;
        self.pending.n.load(Ordering::Acquire)
    }

    /// Whether a ledger record (by its key) was written by this writer:
    /// its events are in this replica's memory already.
    pub fn own_record(&self, key: &[u8]) -> bool {
        key.len() == 16 && key[..8] == self.keys.instance.to_be_bytes()
    }

    /// Tells the writer to write the entries it holds and stop, and waits
    /// for it until `until`. Call after [`Ledger::settled`], so the last
    /// confirmations are among them.
    pub async fn close(&self, until: tokio::time::Instant) {
        self.stop.fire();
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = writer {
            let _ = tokio::time::timeout_at(until, w).await;
        }
    }

    /// Queues an event Kafka confirmed. Never waits. (With transactions
    /// its line was committed with it: nothing to do.)
    pub fn record(&self, entry: Entry) {
        let Some(tx) = &self.tx else { return };
        if let Err(e) = tx.try_send(entry) {
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
    keys: Arc<Keys>,
}

impl Writer {
    /// Collects entries into batches — one Kafka record carries many
    /// identities, so the ledger costs a fraction of a produce per event —
    /// and writes each batch without waiting for the previous one.
    async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<Entry>, mut shutdown: Signal) {
        // Grown as entries come: at low traffic a batch is one entry.
        let mut batch: Vec<Entry> = Vec::new();
        loop {
            let first = tokio::select! {
                e = rx.recv() => e,
                () = shutdown.fired() => {
                    rx.close();
                    let mut bytes = 0;
                    while let Ok(e) = rx.try_recv() {
                        bytes += line_len(&e);
                        batch.push(e);
                        if batch.len() == BATCH || bytes >= BATCH_BYTES - MAX_LINE {
                            self.write(std::mem::take(&mut batch)).await;
                            bytes = 0;
                        }
                    }
                    if !batch.is_empty() {
                        self.write(batch).await;
                    }
                    return;
                }
            };
            let Some(first) = first else { return };
            let mut bytes = line_len(&first);
            batch.push(first);
            let until = Instant::now() + LINGER;
            while batch.len() < BATCH && bytes < BATCH_BYTES - MAX_LINE {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(e)) => {
                        bytes += line_len(&e);
                        batch.push(e);
                    }
                    _ => break,
                }
            }
            let full = std::mem::take(&mut batch);
            let writer = self.clone();
            tokio::spawn(async move { writer.write(full).await });
        }
    }

    /// One record: key = a key no other batch has; value = one line per
    /// event, `<identity hex32> <body hex16> <partition> <offset> <topic>
    /// <id>`, readable with any console consumer. A failure is logged and
    /// counted, not retried: its worst consequence is that a later copy is
    /// published again.
    async fn write(&self, batch: Vec<Entry>) {
        if batch.is_empty() {
            return;
        }
        let key = self.keys.next();
        let mut value = Vec::with_capacity(batch.len() * 112);
        for e in &batch {
            line(&mut value, e);
        }
        let rec: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).key(&key[..]).payload(&value);
        let n = batch.len() as u64;
        let report = match self.producer.send_result(rec) {
            Ok(r) => r,
            Err((e, _)) => return failed(&self.metrics, n, &e.to_string()),
        };
        match report.await {
            // A report without an offset proves nothing (see
            // crate::receipt): the batch counts as not written.
            Ok(Ok(d)) => match Receipt::from_report(d.partition, d.offset) {
                Ok(_) => events::ledger_written(&self.metrics, n),
                Err(unconfirmed) => {
                    events::unconfirmed_report(
                        &self.metrics,
                        RecordWriter::Ledger,
                        &self.topic,
                        unconfirmed,
                    );
                    failed(&self.metrics, n, &unconfirmed.to_string());
                }
            },
            Ok(Err((e, _))) => failed(&self.metrics, n, &e.to_string()),
            Err(_) => failed(&self.metrics, n, "producer shut down"),
        }
    }
}

fn failed(metrics: &Metrics, n: u64, error: &str) {
    events::ledger_write_failed(metrics, n, error);
}

/// Appends one entry's line, `<identity hex32> <body hex16> <partition>
/// <offset> <topic> <id>\n`, byte by byte (no formatting machinery).
fn line(out: &mut Vec<u8>, e: &Entry) {
    line_of(out, e.claim, &e.id, &e.topic, Some(e.receipt));
}

/// The line of an event; without a receipt (a line written in the event's
/// own transaction, before Kafka said where the record went) the partition
/// and offset are `-`.
pub fn line_of(out: &mut Vec<u8>, claim: Claim, id: &str, topic: &str, at: Option<Receipt>) {
    push_hex(out, claim.identity, 32);
    out.push(b' ');
    push_hex(out, u128::from(claim.body), 16);
    out.push(b' ');
    match at {
        Some(r) => {
            push_decimal(out, i64::from(r.partition()));
            out.push(b' ');
            push_decimal(out, r.offset());
        }
        None => out.extend_from_slice(b"- -"),
    }
    out.push(b' ');
    out.extend_from_slice(topic.as_bytes());
    out.push(b' ');
    out.extend_from_slice(id_in_line(id).as_bytes());
    out.push(b'\n');
}

/// The longest line: the digests, the place (partition and offset in
/// decimal), the longest topic name Kafka allows (249) and the id kept.
const MAX_LINE: usize = 32 + 1 + 16 + 1 + 11 + 1 + 20 + 1 + 249 + 1 + MAX_ID_IN_LINE + 1;

/// The bytes `line` writes for `e`, at most [`MAX_LINE`].
fn line_len(e: &Entry) -> usize {
    32 + 1 + 16 + 1 + 11 + 1 + 20 + 1 + e.topic.len() + 1 + id_in_line(&e.id).len() + 1
}

/// The event's id as a ledger line keeps it: cut to [`MAX_ID_IN_LINE`]
/// bytes, at a character boundary.
fn id_in_line(id: &str) -> &str {
    crate::telemetry::bounded(id, MAX_ID_IN_LINE)
}

/// The low `digits` hex digits of `v`, lower case, zero-padded.
fn push_hex(out: &mut Vec<u8>, v: u128, digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend(
        (0..digits)
            .rev()
            .map(|i| HEX[((v >> (4 * i)) & 0xf) as usize]),
    );
}

/// `v` in decimal, as `{}` writes it.
fn push_decimal(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Parses a ledger record's value: the claims it lists. Lines without a
/// body digest (earlier versions) or otherwise malformed are skipped.
pub fn parse_entries(value: &[u8]) -> impl Iterator<Item = Claim> + '_ {
    value.split(|&b| b == b'\n').filter_map(|line| {
        let mut words = line.split(|&b| b == b' ');
        let identity = words.next().filter(|w| w.len() == 32)?;
        let body = words.next().filter(|w| w.len() == 16)?;
        Some(Claim {
            identity: parse_hex(identity)?,
            body: u64::try_from(parse_hex(body)?).ok()?,
        })
    })
}

/// A hex number as `u128::from_str_radix(_, 16)` reads it (a leading `+`
/// included), at most 32 digits.
fn parse_hex(word: &[u8]) -> Option<u128> {
    let digits = word.strip_prefix(b"+").unwrap_or(word);
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    digits.iter().try_fold(0u128, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(d))
    })
}

/// Ledger record keys: this writer's random 64-bit instance id and a
/// sequence number. Unique across replicas and restarts (a collision needs
/// two instances to draw the same 64 random bits).
struct Keys {
    instance: u64,
    next: std::sync::atomic::AtomicU64,
}

impl Keys {
    fn new() -> Keys {
        use std::hash::BuildHasher as _;
        // RandomState is seeded from the operating system's randomness.
        let instance = std::collections::hash_map::RandomState::new()
            .hash_one((std::process::id(), SystemTime::now()));
        Keys {
            instance,
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn next(&self) -> [u8; 16] {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&self.instance.to_be_bytes());
        k[8..].copy_from_slice(&seq.to_be_bytes());
        k
    }
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
    pub async fn run(self, mut shutdown: Signal) {
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
        let (consumer, mut behind) = loop {
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
        let consumer = Arc::new(consumer);
        let mut assigned = assigned_partitions(&consumer);
        let started = Instant::now();
        let mut read = 0u64;
        if behind.is_empty() {
            self.mark_caught_up(&topic, read, started);
        }

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
                    // deleted: trust the consumer's position too.
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
            if behind.is_empty() && !self.state.caught_up() {
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
    /// and, per non-empty partition, the end offset to reach.
    async fn assign(
        &self,
        topic: &str,
    ) -> Result<(StreamConsumer<KafkaContext>, BTreeMap<i32, i64>), String> {
        let mut cfg = base_client_config(&self.kafka);
        cfg.set("group.id", format!("{}-ledger", self.kafka.client_id))
            // Lines of a transaction that aborted were never true: their
            // events are not in Kafka. Only committed lines count.
            .set("isolation.level", "read_committed")
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
            let all = partitions_of(&consumer, &topic_owned, timeout)?;
            let mut ends = BTreeMap::new();
            let mut tpl = TopicPartitionList::new();
            for p in all {
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
