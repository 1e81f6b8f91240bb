//! The ledger writer: a task that gathers the entries Kafka confirmed into
//! batches, one ledger record each, and writes them without waiting for
//! one another; and the record keys, unique across replicas and restarts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use rdkafka::producer::FutureRecord;
use tokio::sync::mpsc;

use crate::dedup::ledger::Entry;
use crate::dedup::ledger::line::{MAX_LINE, line, line_len};
use crate::kafka::client::Producer;
use crate::labels::RecordWriter;
use crate::receipt::Receipt;
use crate::signal::Signal;
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

/// Entries in one ledger record at most.
const BATCH: usize = 512;
/// Bytes of one ledger record's value at most: well under Kafka's
/// default record limit (1 MiB), whatever the senders chose as MIDs.
pub(super) const BATCH_BYTES: usize = 256 * 1024;
/// How long the writer gathers confirmations after the first one before
/// writing them (one record per `BATCH` entries or `BATCH_BYTES`). Adds at
/// most this much to the time a copy on another replica could slip through
/// (POPBiLL re-sends minutes apart). Each ledger record costs librdkafka's threads the same
/// whatever it carries, and the follower reads it back: at 2 ms a bridge
/// taking 10,000 deliveries/s wrote 500 records/s, ~1 µs of CPU a
/// delivery (docs/performance.md, "the ledger's linger"); at 20 ms, 50.
const LINGER: Duration = Duration::from_millis(20);

pub(super) struct Writer {
    pub(super) topic: Arc<str>,
    pub(super) producer: Producer,
    pub(super) metrics: Arc<Metrics>,
    pub(super) keys: Arc<Keys>,
}

impl Writer {
    /// Collects entries into batches — one Kafka record carries many
    /// identities, so the ledger costs a fraction of a produce per event —
    /// and writes each batch without waiting for the previous one.
    pub(super) async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<Entry>, mut shutdown: Signal) {
        loop {
            let first = tokio::select! {
                e = rx.recv() => e,
                () = shutdown.fired() => return self.write_rest(rx, Vec::new()).await,
            };
            let Some(first) = first else { return };
            // Grown as entries come: at low traffic a batch is one entry.
            let mut batch = vec![first];
            // The linger is slept, not spent waiting on the channel: the
            // confirmations that arrive meanwhile are queued without waking
            // this task (one wake-up a batch, not one an event), and are
            // drained when it ends.
            if shutdown.sleep(LINGER).await {
                return self.write_rest(rx, batch).await;
            }
            // A full batch may have left more behind: written at once,
            // they waited their linger already.
            loop {
                let full = fill(&mut rx, &mut batch);
                if !batch.is_empty() {
                    let (writer, batch) = (self.clone(), std::mem::take(&mut batch));
                    tokio::spawn(async move { writer.write(batch).await });
                }
                if !full {
                    break;
                }
            }
        }
    }

    /// At shutdown: `batch` and whatever is queued, written before this
    /// returns, so [`crate::dedup::ledger::Ledger::close`] (which waits for
    /// the writer) is followed by a producer flush that includes them.
    async fn write_rest(&self, mut rx: mpsc::Receiver<Entry>, mut batch: Vec<Entry>) {
        rx.close();
        loop {
            let full = fill(&mut rx, &mut batch);
            // Nothing when empty.
            self.write(std::mem::take(&mut batch)).await;
            if !full {
                return;
            }
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

/// Moves queued entries into `batch` until it is full (`BATCH` entries,
/// or as many bytes of lines as one record may take, `BATCH_BYTES`; each
/// line is at most `MAX_LINE`) or the queue is empty. True when full.
fn fill(rx: &mut mpsc::Receiver<Entry>, batch: &mut Vec<Entry>) -> bool {
    let mut bytes: usize = batch.iter().map(line_len).sum();
    while batch.len() < BATCH && bytes < BATCH_BYTES - MAX_LINE {
        let Ok(e) = rx.try_recv() else { return false };
        bytes += line_len(&e);
        batch.push(e);
    }
    true
}

pub(super) fn failed(metrics: &Metrics, n: u64, error: &str) {
    events::ledger_write_failed(metrics, n, error);
}

/// Ledger record keys: this writer's random 64-bit instance id and a
/// sequence number. Unique across replicas and restarts (a collision needs
/// two instances to draw the same 64 random bits).
pub(super) struct Keys {
    pub(super) instance: u64,
    next: std::sync::atomic::AtomicU64,
}

impl Keys {
    pub(super) fn new() -> Keys {
        use std::hash::BuildHasher as _;
        // RandomState is seeded from the operating system's randomness.
        let instance = std::collections::hash_map::RandomState::new()
            .hash_one((std::process::id(), SystemTime::now()));
        Keys {
            instance,
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(super) fn next(&self) -> [u8; 16] {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&self.instance.to_be_bytes());
        k[8..].copy_from_slice(&seq.to_be_bytes());
        k
    }
}

#[cfg(test)]
mod tests;
