//! The duplicates ledger: a Kafka topic recording which events have been
//! published, shared by every replica, kept in Kafka so no other
//! infrastructure is needed.
//!
//! - **Record:** a batch of events: key = the writer's random instance id
//!   and the batch's sequence number (unique, so no two batches ever share
//!   a key); value = one line per event saying what was published and
//!   where it landed, `<identity hex32> <body hex16> <partition> <offset>
//!   <topic> <id>`; timestamp = when the batch was written. With Kafka
//!   transactions a batch is a group's lines (the first member's at once,
//!   the rest at the seal, under one key), written in the group's own
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
//!   batches that happened to start with the same identity; a group's two
//!   records share their key, unique to the group.)
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
//!
//! ## Where each part lives
//!
//! - this module: [`Ledger`], the handle the duplicates part hands
//!   confirmed events to, and the count of delivery reports shutdown waits
//!   for;
//! - `writer`: the task that batches entries into records, and the keys
//!   that make each record unique;
//! - `line`: the line format, written and parsed;
//! - `follower`: reading the topic into the memory, and readiness.

mod catch_up;
mod follower;
mod line;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use self::writer::{BATCH_BYTES, Keys, Writer, failed};
use crate::dedup::Claim;
use crate::kafka::client::Producer;
use crate::kafka::transactions::LedgerRecords;
use crate::receipt::Receipt;
use crate::signal::{Trigger, signal};
use crate::telemetry::metrics::Metrics;

pub(crate) use self::follower::Follower;
pub use self::follower::LedgerState;
pub(crate) use self::line::{line_of, parse_entries};

/// Entries waiting for the writer at most; beyond it an entry is dropped
/// and counted (its event may later be published again, never lost).
const QUEUE: usize = 65_536;

/// One published event, for the ledger.
pub(crate) struct Entry {
    pub(crate) claim: Claim,
    pub(crate) id: String,
    pub(crate) topic: Arc<str>,
    pub(crate) receipt: Receipt,
}

/// Hands confirmed events to the ledger writer; or, with Kafka
/// transactions, makes the lines the group commit writes in each
/// transaction (then there is no writer task).
pub(crate) struct Ledger {
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

/// One event whose delivery report shutdown still expects; see
/// [`Ledger::expect`].
pub(crate) struct Expected(Arc<Outstanding>);

impl Drop for Expected {
    fn drop(&mut self) {
        if self.0.n.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.zero.notify_waiters();
        }
    }
}

impl Ledger {
    /// Starts the writer task; it stops, after writing what it holds, when
    /// [`Ledger::close`] is called.
    pub(crate) fn start(topic: &str, producer: Producer, metrics: Arc<Metrics>) -> Ledger {
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
    pub(crate) fn in_transactions(topic: &str, metrics: Arc<Metrics>) -> Ledger {
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
    pub(crate) fn in_transaction(&self) -> bool {
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
    pub(crate) fn expect(&self) -> Expected {
        self.pending.n.fetch_add(1, Ordering::AcqRel);
        Expected(self.pending.clone())
    }

    /// Waits, at most `within`, until every awaited delivery report was
    /// handled. Returns how many were still outstanding.
    pub(crate) async fn settled(&self, within: Duration) -> usize {
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
    pub(crate) fn own_record(&self, key: &[u8]) -> bool {
        key.len() == 16 && key[..8] == self.keys.instance.to_be_bytes()
    }

    /// Tells the writer to write the entries it holds and stop, and waits
    /// for it until `until`. Call after [`Ledger::settled`], so the last
    /// confirmations are among them.
    pub(crate) async fn close(&self, until: tokio::time::Instant) {
        self.stop.fire();
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = writer {
            let _ = tokio::time::timeout_at(until, w).await;
        }
    }

    /// Queues an event Kafka confirmed. Never waits. (With transactions
    /// its line was committed with it: nothing to do.)
    pub(crate) fn record(&self, entry: Entry) {
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

#[cfg(test)]
mod tests;
