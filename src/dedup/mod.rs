//! Duplicates: exactly one Kafka record per POPBiLL event.
//!
//! POPBiLL sends an event again whenever it did not see `OK` in time, and a
//! retry usually lands on another replica. Three layers recognise a copy:
//!
//! 1. **In flight, in this process.** Copies of one identity that arrive
//!    while the first is being published wait for its verdict and answer
//!    the same: `OK` when it lands, 503 when it fails. One produce.
//! 2. **Remembered, in this process.** Identities confirmed by Kafka within
//!    the window, as 128-bit digests in time-bucketed hash maps, each with
//!    a 64-bit digest of the body that was published.
//! 3. **Across replicas and restarts: the ledger** (see [`crate::dedup::ledger`]), a
//!    topic every replica writes after Kafka confirmed an event, and reads
//!    from the start on boot and then follows into layer 2.
//!
//! A failed first attempt is never remembered, so its retry publishes.
//!
//! ## Only a true copy is a duplicate
//!
//! An identity is a claim: anyone who can post may send `Pb-Webhook-MID: X`
//! with a junk body before POPBiLL's genuine event X arrives. So a delivery
//! is a duplicate only when its identity *and* its body digest match what
//! was published. A delivery whose identity is remembered with another
//! body is a conflict: it is published like a new event, counted in
//! `popbill_bridge_dedup_conflicts_total` and logged with both digests.
//! Copies in flight are coalesced only when their bodies match too.
//!
//! ## Crash points
//!
//! With Kafka transactions (`kafka.transactions`, the default) the event
//! record and its ledger line are committed together, in one transaction
//! (see [`crate::kafka::transactions`]): a `read_committed` reader sees
//! both or neither, the answer `OK` comes after the commit, and a crash at
//! any point leaves no event without its line. The memory takes the event
//! in once the commit is confirmed.
//!
//! Without them the order of writes is: event record → (confirmed) →
//! memory → answer `OK` → ledger record. The ledger is only written after
//! Kafka confirmed the event, so the ledger can never claim an event that
//! is not in Kafka — the one ordering that could lose an acknowledged
//! delivery. What each crash leaves behind:
//!
//! - before the event is confirmed: no `OK` was sent; POPBiLL retries and
//!   the retry publishes (if the first write did land after all, that is a
//!   duplicate record, never a loss);
//! - after the event, before the ledger record: `OK` may have been sent; a
//!   later copy (a manual re-run) is not in the ledger and is published
//!   again — a duplicate record, never a loss;
//! - after the ledger record: every replica recognises later copies.
//!
//! ## Limits
//!
//! Copies of one event that reach two replicas within the ledger's
//! propagation delay (milliseconds) are both published; POPBiLL's retries
//! come minutes apart. Identities are remembered for at least `window`
//! (and at most `window` plus one bucket, an eighth of it); under
//! `max_entries` pressure the oldest confirmations go early, an eighth of
//! the cap at a time, and `popbill_bridge_dedup_evicted_total` counts them:
//! the cap holds at every moment, also against a flood of new identities
//! within one eighth of the window.
//!
//! ## Where each part lives
//!
//! - this module: [`Dedup`], which shards the state by identity and holds
//!   the protocol together (admit, remember, expire);
//! - [`config`](DedupConfig): the `[dedup]` section and its checks;
//! - `inflight`: [`Admission`], the [`Lead`] a first copy settles, and the
//!   [`InFlight`] its copies wait on;
//! - `memory`: the time-bucketed memory of confirmed identities;
//! - [`identity`]: what makes two deliveries one event;
//! - [`ledger`]: the topic shared across replicas.

mod config;
pub mod identity;
mod inflight;
pub mod ledger;
mod memory;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

pub use self::config::DedupConfig;
use self::identity::{Identity, Namespace};
pub(crate) use self::inflight::{Admission, InFlight, Lead, Verdict};
use self::memory::{DigestHash, Lookup, Memory, unix_secs};
use crate::delivery::Delivery;
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

/// How many independent parts (each with its own lock and tables) the
/// memory is split into, by identity. A hash table that grows rehashes
/// every entry while its lock is held: one table of 229,376 events took
/// 6 ms here (2 million, the default cap, ~50 ms), during which every
/// delivery waited and both tokio workers were blocked. Split in 16, a
/// growth moves a sixteenth of that and holds up a sixteenth of the
/// deliveries.
const SHARDS: usize = 16;

/// What a delivery claims to be: its identity and the digest of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Claim {
    pub(crate) identity: u128,
    pub(crate) body: u64,
}

/// The duplicates part: the memory, the copies in flight, and the ledger
/// shared with the other replicas. The webhook asks it for a claim
/// ([`Dedup::admit`]) and hands the lead's write over to it
/// ([`Lead::confirm`]); the protocol below is all here.
pub struct Dedup {
    enabled: bool,
    /// [`SHARDS`] parts, a claim's chosen by its identity ([`shard_of`]).
    shards: Box<[Shard]>,
    metrics: Arc<Metrics>,
    /// Present when detection is on and the bridge writes to Kafka.
    ledger: Option<ledger::Ledger>,
}

/// One part of the memory and of the claims in flight, and its sizes for
/// the gauges (summed over the parts without taking their locks).
struct Shard {
    state: Mutex<State>,
    len: AtomicUsize,
    bytes: AtomicUsize,
}

/// The part of the duplicates state a claim belongs to. The identity is a
/// digest (uniform); bits well away from the ones the tables hash on.
fn shard_of(claim: Claim) -> usize {
    (claim.identity >> 96) as usize % SHARDS
}

struct State {
    memory: Memory,
    /// Claims being published, and where their copies wait (made when the
    /// first copy arrives: most events have none).
    inflight: HashMap<Claim, Option<Arc<InFlight>>, DigestHash>,
}

impl Dedup {
    /// Memory and coalescing only; see [`Dedup::with_ledger`].
    pub(crate) fn new(cfg: &DedupConfig, metrics: Arc<Metrics>) -> Self {
        // The cap is shared evenly: identities spread evenly over the parts.
        let per_shard = cfg.max_entries.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| Shard {
                state: Mutex::new(State {
                    memory: Memory::new(cfg.window, per_shard),
                    inflight: HashMap::default(),
                }),
                len: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
            })
            .collect();
        Dedup {
            enabled: cfg.enabled,
            shards,
            metrics,
            ledger: None,
        }
    }

    /// Records every confirmed event in the ledger topic (when detection is
    /// on): through a writer task started here, or, when `in_transactions`,
    /// in each event's own Kafka transaction (see [`Lead::ledger_line`]).
    pub(crate) fn with_ledger(
        mut self,
        cfg: &DedupConfig,
        producer: crate::kafka::client::Producer,
        in_transactions: bool,
    ) -> Self {
        if self.enabled {
            self.ledger = Some(if in_transactions {
                ledger::Ledger::in_transactions(&cfg.ledger_topic, self.metrics.clone())
            } else {
                ledger::Ledger::start(&cfg.ledger_topic, producer, self.metrics.clone())
            });
        }
        self
    }

    /// Where the group commit writes ledger lines, when they travel in
    /// transactions.
    pub(crate) fn ledger_records(&self) -> Option<crate::kafka::transactions::LedgerRecords> {
        self.ledger
            .as_ref()
            .filter(|l| l.in_transaction())
            .map(ledger::Ledger::records)
    }

    /// Shutdown's ledger phase: waits (at most `budget`) for every delivery
    /// report still outstanding — requests abandoned or timed out, their
    /// records still in flight — so their events reach the ledger too, then
    /// lets the writer hand over its last batch.
    pub(crate) async fn flush_ledger(&self, budget: Duration) {
        let Some(ledger) = &self.ledger else { return };
        let until = tokio::time::Instant::now() + budget;
        let outstanding = ledger.settled(budget).await;
        if outstanding > 0 {
            tracing::warn!(
                outstanding,
                "delivery reports still awaited at shutdown; those events get no ledger entry (a later copy may be published again)"
            );
        }
        ledger.close(until).await;
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether a ledger record (by its key) was written by this process's
    /// writer: every event it lists went into the memory when Kafka
    /// confirmed it, before the record was written.
    pub(crate) fn own_ledger_record(&self, key: &[u8]) -> bool {
        self.ledger.as_ref().is_some_and(|l| l.own_record(key))
    }

    /// The part of the state `claim` belongs to, locked.
    fn lock(&self, claim: Claim) -> (usize, MutexGuard<'_, State>) {
        let i = shard_of(claim);
        (i, self.lock_shard(i))
    }

    fn lock_shard(&self, i: usize) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep
        // serving rather than turning every later delivery into a panic.
        self.shards[i]
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A delivery's `ce_id` and its claim. The hashing (the body's SHA-256,
    /// the identity digest) is done only when detection is on: off, the
    /// claim is never looked at, and the `ce_id` is the same either way.
    pub(crate) fn identify<'a>(
        &self,
        d: &Delivery<'a>,
        ns: Namespace,
        topic: &str,
    ) -> (Cow<'a, str>, Claim) {
        if !self.enabled {
            let unused = Claim {
                identity: 0,
                body: 0,
            };
            return (Identity::id_of(d, ns, topic), unused);
        }
        let identity = Identity::of(d, ns, topic);
        let claim = Claim {
            identity: identity.digest,
            body: identity.body,
        };
        (identity.id, claim)
    }

    /// `id` names the event in the conflict warning (the MID or content
    /// key), never the body.
    pub(crate) fn admit(self: &Arc<Self>, claim: Claim, id: &str) -> Admission {
        if !self.enabled {
            // Nothing to coalesce or remember.
            return Admission::Lead(Lead::new(self.clone(), claim));
        }
        let (_, mut st) = self.lock(claim);
        match st.memory.lookup(claim) {
            Lookup::Same => return Admission::Seen,
            Lookup::Differs(remembered) => {
                drop(st);
                events::dedup_conflict(&self.metrics, id, claim.identity, remembered, claim.body);
                st = self.lock(claim).1;
            }
            Lookup::Unknown => {}
        }
        if let Some(copies) = st.inflight.get_mut(&claim) {
            return Admission::InFlight(copies.get_or_insert_default().clone());
        }
        st.inflight.insert(claim, None);
        // Built only here: a Lead that is dropped settles as a failure.
        Admission::Lead(Lead::new(self.clone(), claim))
    }

    /// Records an identity confirmed at `at` (from this process or from the
    /// ledger).
    #[cfg(test)] // The bridge takes identities in by the batch.
    pub(crate) fn remember(&self, claim: Claim, at: SystemTime) {
        self.remember_all(std::iter::once(claim), at);
    }

    /// Records many identities confirmed at `at` (a batch of the ledger),
    /// each under its part's lock, held for that one insert only.
    pub(crate) fn remember_all(&self, claims: impl Iterator<Item = Claim>, at: SystemTime) {
        if !self.enabled {
            return;
        }
        let at = unix_secs(at);
        let (mut evicted, mut any) = (0, false);
        for c in claims {
            let (i, mut st) = self.lock(c);
            evicted += st.memory.insert(c, at);
            self.note_sizes(i, &st.memory);
            any = true;
        }
        if any {
            self.set_gauges(evicted);
        }
    }

    /// Drops identities older than the window.
    pub(crate) fn expire(&self, now: SystemTime) {
        for i in 0..SHARDS {
            let mut st = self.lock_shard(i);
            st.memory.expire(unix_secs(now));
            self.note_sizes(i, &st.memory);
        }
        self.set_gauges(0);
    }

    /// Keeps a part's sizes for [`Dedup::set_gauges`]; called with its lock
    /// held.
    fn note_sizes(&self, i: usize, memory: &Memory) {
        let shard = &self.shards[i];
        shard.len.store(memory.len(), Ordering::Relaxed);
        shard.bytes.store(memory.bytes(), Ordering::Relaxed);
    }

    /// Sets the memory gauges to the sum over the parts.
    fn set_gauges(&self, evicted: usize) {
        let (len, bytes) = self.shards.iter().fold((0, 0), |(l, b), s| {
            (
                l + s.len.load(Ordering::Relaxed),
                b + s.bytes.load(Ordering::Relaxed),
            )
        });
        self.metrics.set_dedup_memory(len, bytes, evicted);
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        (0..SHARDS).map(|i| self.lock_shard(i).memory.len()).sum()
    }
}

#[cfg(test)]
mod tests;
