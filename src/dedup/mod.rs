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

pub mod identity;
pub mod ledger;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::dedup::identity::{Identity, Namespace};
use crate::delivery::Delivery;
use crate::error::BridgeError;
use crate::receipt::Receipt;
use crate::route::{Route, Router};
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Recognise copies of an event already published and acknowledge them
    /// without a second record.
    pub enabled: bool,
    /// How long an event is remembered after Kafka confirmed it.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Memory cap, in remembered events (at most 64 bytes each), shared
    /// evenly by the memory's parts. Beyond it the oldest eighth of the
    /// window is forgotten early.
    pub max_entries: usize,
    /// The ledger topic every replica writes and follows.
    pub ledger_topic: String,
    /// Partitions of the ledger topic when the bridge creates it.
    pub ledger_partitions: i32,
    /// Create the ledger topic (`cleanup.policy=delete`,
    /// `retention.ms` = twice the window) if it is missing. When false, a
    /// missing ledger fails readiness.
    pub create_ledger: bool,
}

impl DedupConfig {
    /// Every problem of this section, each saying what to change.
    pub fn check(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if !self.enabled {
            return errs;
        }
        if self.window < Duration::from_secs(60) {
            errs.push(format!(
                "dedup.window {} is too short: POPBiLL retries minutes apart; use at least 1m (24h or more is advised)",
                humantime::format_duration(self.window)
            ));
        }
        if self.max_entries < 1000 {
            errs.push("dedup.max_entries must be at least 1000".into());
        }
        if self.ledger_partitions < 1 {
            errs.push("dedup.ledger_partitions must be at least 1".into());
        }
        if let Err(e) = crate::route::check_topic_name(&self.ledger_topic) {
            errs.push(format!("dedup.ledger_topic {:?}: {e}", self.ledger_topic));
        }
        errs
    }
}

impl DedupConfig {
    /// The ledger needs a topic of its own: ledger lines would reach the
    /// consumers of a delivery topic, and malformed bodies written as dead
    /// letters would corrupt the ledger's lines. Checked against the
    /// routes as the router resolved them.
    pub fn check_topic(&self, router: &Router) -> Vec<String> {
        let mut errs = Vec::new();
        if !self.enabled {
            return errs;
        }
        let dead_letter = router.dead_letter();
        let (dead, routed): (Vec<&Route>, Vec<&Route>) = router
            .routes()
            .iter()
            .filter(|r| *r.topic == *self.ledger_topic)
            .partition(|r| dead_letter.is_some_and(|d| std::ptr::eq(d, *r)));
        if !dead.is_empty() {
            errs.push(format!(
                "dead_letter.topic {:?} is also dedup.ledger_topic: give dead letters a topic of their own",
                self.ledger_topic
            ));
        }
        if !routed.is_empty() {
            errs.push(format!(
                "dedup.ledger_topic {:?} is also a delivery topic: give the ledger a topic of its own",
                self.ledger_topic
            ));
        }
        errs
    }
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(48 * 3600),
            max_entries: 2_000_000,
            ledger_topic: "popbill.bridge.ledger".into(),
            ledger_partitions: 3,
            create_ledger: true,
        }
    }
}

/// How many buckets the window is cut into.
const BUCKETS: u64 = 8;

/// How many independent parts (each with its own lock and tables) the
/// memory is split into, by identity. A hash table that grows rehashes
/// every entry while its lock is held: one table of 229,376 events took
/// 6 ms here (2 million, the default cap, ~50 ms), during which every
/// delivery waited and both tokio workers were blocked. Split in 16, a
/// growth moves a sixteenth of that and holds up a sixteenth of the
/// deliveries.
const SHARDS: usize = 16;

/// The verdict of a first attempt, shared with the copies that waited.
pub type Verdict = Result<Receipt, Arc<BridgeError>>;

/// What a delivery claims to be: its identity and the digest of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claim {
    pub identity: u128,
    pub body: u64,
}

/// What to do with a delivery, given its claim.
pub enum Admission {
    /// Confirmed before with the same body: answer `OK`, publish nothing.
    Seen,
    /// The same event is being published right now: wait for its verdict.
    Follow(Arc<Copies>),
    /// First copy (or a conflicting body): publish it, then report through
    /// the lead.
    Lead(Lead),
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
    inflight: HashMap<Claim, Option<Arc<Copies>>, DigestHash>,
}

/// Where copies of an event in flight wait for the first copy's verdict.
#[derive(Default)]
pub struct Copies {
    verdict: std::sync::OnceLock<Verdict>,
    notify: tokio::sync::Notify,
}

impl Copies {
    /// The first copy's verdict, once it has one. Every lead reports one,
    /// even when dropped (see [`Lead`]).
    pub async fn verdict(&self) -> Verdict {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = self.verdict.get() {
                return v.clone();
            }
            notified.await;
        }
    }

    fn report(&self, verdict: Verdict) {
        let _ = self.verdict.set(verdict);
        self.notify.notify_waiters();
    }
}

impl Dedup {
    /// Memory and coalescing only; see [`Dedup::with_ledger`].
    pub fn new(cfg: &DedupConfig, metrics: Arc<Metrics>) -> Self {
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
    pub fn with_ledger(
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
    pub async fn flush_ledger(&self, budget: Duration) {
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

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether a ledger record (by its key) was written by this process's
    /// writer: every event it lists went into the memory when Kafka
    /// confirmed it, before the record was written.
    pub fn own_ledger_record(&self, key: &[u8]) -> bool {
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
    pub fn identify<'a>(
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
    pub fn admit(self: &Arc<Self>, claim: Claim, id: &str) -> Admission {
        if !self.enabled {
            // Nothing to coalesce or remember.
            return Admission::Lead(Lead {
                dedup: self.clone(),
                claim,
                done: false,
            });
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
            return Admission::Follow(copies.get_or_insert_default().clone());
        }
        st.inflight.insert(claim, None);
        // Built only here: a Lead that is dropped reports failure.
        Admission::Lead(Lead {
            dedup: self.clone(),
            claim,
            done: false,
        })
    }

    /// Records an identity confirmed at `at` (from this process or from the
    /// ledger).
    pub fn remember(&self, claim: Claim, at: SystemTime) {
        self.remember_all(std::iter::once(claim), at);
    }

    /// Records many identities confirmed at `at` (a batch of the ledger),
    /// each under its part's lock, held for that one insert only.
    pub fn remember_all(&self, claims: impl Iterator<Item = Claim>, at: SystemTime) {
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
            self.report(evicted);
        }
    }

    /// Drops identities older than the window.
    pub fn expire(&self, now: SystemTime) {
        for i in 0..SHARDS {
            let mut st = self.lock_shard(i);
            st.memory.expire(unix_secs(now));
            self.note_sizes(i, &st.memory);
        }
        self.report(0);
    }

    /// Keeps a part's sizes for [`Dedup::report`]; called with its lock held.
    fn note_sizes(&self, i: usize, memory: &Memory) {
        let shard = &self.shards[i];
        shard.len.store(memory.len(), Ordering::Relaxed);
        shard.bytes.store(memory.bytes(), Ordering::Relaxed);
    }

    /// Sets the memory gauges to the sum over the parts.
    fn report(&self, evicted: usize) {
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

/// The first copy's duty: report how publishing ended. Dropped without a
/// report (the request was abandoned before its record was handed to
/// Kafka), it tells the waiting copies to retry.
pub struct Lead {
    dedup: Arc<Dedup>,
    claim: Claim,
    done: bool,
}

impl Lead {
    /// This event's ledger line, to write in the same Kafka transaction as
    /// its record; `None` without a ledger, or when the ledger writer
    /// records it after confirmation instead.
    pub fn ledger_line(&self, id: &str, topic: &str) -> Option<Vec<u8>> {
        if !self
            .dedup
            .ledger
            .as_ref()
            .is_some_and(|l| l.in_transaction())
        {
            return None;
        }
        let mut line = Vec::with_capacity(96 + topic.len() + id.len().min(128));
        ledger::line_of(&mut line, self.claim, id, topic, None);
        Some(line)
    }

    /// Waits for Kafka's verdict on this lead's write (`report`), at most
    /// until `deadline` (the request's timer), and reports it: on success the identity is
    /// remembered, then (after the answer may have gone out) recorded in
    /// the ledger, where `id` and `topic` are what the ledger line says.
    ///
    /// The verdict is awaited right here, so a delivery costs one wake-up
    /// when Kafka confirms in time. When the deadline passes first, or the
    /// request is dropped (the client hung up), the report is handed to a
    /// task of its own that completes the same way: a write Kafka confirms
    /// late is still remembered and recorded, and the retry POPBiLL sends
    /// after our 503 is recognised. Shutdown waits for every report still
    /// awaited, here or in such a task, before the ledger's last batch.
    pub async fn confirm<F>(
        self,
        report: F,
        id: &str,
        topic: &Arc<str>,
        deadline: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Verdict
    where
        F: Future<Output = Verdict> + Unpin + Send + 'static,
    {
        let ledger = self.dedup.ledger.as_ref();
        let mut awaiting = Awaiting(Some(Confirming {
            // Tells shutdown a ledger entry may still come from this report.
            awaited: ledger.map(ledger::Ledger::expect),
            id: ledger.map(|_| id.to_owned()),
            topic: topic.clone(),
            lead: self,
            report,
        }));
        let Some(c) = awaiting.0.as_mut() else {
            unreachable!("set above")
        };
        tokio::select! {
            biased;
            verdict = &mut c.report => {
                if let Some(c) = awaiting.0.take() {
                    c.settle(verdict.clone());
                }
                verdict
            }
            // `awaiting` hands the report to a task as it drops.
            () = deadline => Err(Arc::new(BridgeError::PublishTimeout)),
        }
    }

    /// Reports the verdict. On success the identity is remembered *before*
    /// it leaves the in-flight table, so no copy can slip between the two.
    pub fn complete(mut self, verdict: Verdict) {
        self.finish(verdict);
    }

    fn finish(&mut self, verdict: Verdict) {
        self.done = true;
        if self.dedup.enabled {
            let (i, mut st) = self.dedup.lock(self.claim);
            // Confirmed now: the time the memory keeps it from.
            let evicted = verdict
                .is_ok()
                .then(|| st.memory.insert(self.claim, unix_secs(SystemTime::now())));
            let copies = st.inflight.remove(&self.claim).flatten();
            // A failure leaves the memory as it was: no gauges to move.
            if evicted.is_some() {
                self.dedup.note_sizes(i, &st.memory);
            }
            drop(st);
            if let Some(evicted) = evicted {
                self.dedup.report(evicted);
            }
            if let Some(copies) = copies {
                copies.report(verdict);
            }
        }
    }
}

/// A lead whose delivery report is awaited.
struct Confirming<F> {
    lead: Lead,
    report: F,
    /// The ledger line's id and topic (the id only with a ledger).
    id: Option<String>,
    topic: Arc<str>,
    awaited: Option<ledger::Pending>,
}

impl<F> Confirming<F>
where
    F: Future<Output = Verdict> + Unpin + Send + 'static,
{
    async fn follow(mut self) {
        let verdict = (&mut self.report).await;
        self.settle(verdict);
    }

    fn settle(self, verdict: Verdict) {
        let Confirming {
            lead,
            id,
            topic,
            awaited,
            report: _,
        } = self;
        let (dedup, claim) = (lead.dedup.clone(), lead.claim);
        lead.complete(verdict.clone());
        if let (Ok(receipt), Some(ledger), Some(id)) = (verdict, &dedup.ledger, id) {
            ledger.record(ledger::Entry {
                claim,
                id,
                topic,
                receipt,
            });
        }
        drop(awaited);
    }
}

/// Holds a [`Confirming`] while the request awaits it; dropped with it
/// still inside (deadline passed, request dropped), hands it to a task.
struct Awaiting<F>(Option<Confirming<F>>)
where
    F: Future<Output = Verdict> + Unpin + Send + 'static;

impl<F> Drop for Awaiting<F>
where
    F: Future<Output = Verdict> + Unpin + Send + 'static,
{
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            // Outside a runtime (it is gone: the process is ending) the
            // lead reports the write abandoned as it drops.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(c.follow());
            }
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Err(Arc::new(BridgeError::Abandoned)));
        }
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What the memory knows of a claim's identity.
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    Unknown,
    /// Published with this very body.
    Same,
    /// Published with another body (its digest).
    Differs(u64),
}

/// The identity digest as two words: `(u128, u64)` would be padded to 32
/// bytes by u128's 16-byte alignment, `([u64; 2], u64)` is 24.
type Key = [u64; 2];

fn key(identity: u128) -> Key {
    [(identity >> 64) as u64, identity as u64]
}

/// Where a second body of an identity is kept in a bucket whose main slot
/// holds another body. Never equal to the main key (the mix is non-zero).
fn alt_key(claim: Claim) -> Key {
    let [hi, lo] = key(claim.identity);
    [hi ^ claim.body ^ 1, lo ^ claim.body.rotate_left(32) ^ 1]
}

/// Identities seen within the window, each with its body digest, in
/// buckets in the order they were confirmed. A bucket covers at most
/// `window / BUCKETS` of time and holds at most an eighth of the cap, so
/// the cap holds at every moment: past it, the oldest bucket goes — the
/// oldest confirmations first, an eighth of the cap at most — even when a
/// flood of new identities arrives within one span of time. Expiry drops
/// whole buckets; a lookup probes each map (about `BUCKETS + 1` of them)
/// once.
struct Memory {
    /// Sequence number → bucket; a later bucket never has an earlier time.
    buckets: BTreeMap<u64, Bucket>,
    /// The next bucket's sequence number.
    next: u64,
    span: u64,
    window: u64,
    max_entries: usize,
    /// Identities one bucket takes at most: an eighth of the cap.
    per_bucket: usize,
    len: usize,
}

/// Identities confirmed within one span of time (or the part of a span a
/// flood filled): identity → body digest.
struct Bucket {
    /// Unix seconds / span of the confirmations it holds (the latest).
    time: u64,
    map: HashMap<Key, u64, DigestHash>,
}

impl Memory {
    fn new(window: Duration, max_entries: usize) -> Memory {
        let window = window.as_secs().max(BUCKETS);
        let max_entries = max_entries.max(1);
        Memory {
            buckets: BTreeMap::new(),
            next: 0,
            span: window.div_ceil(BUCKETS),
            window,
            max_entries,
            per_bucket: max_entries.div_ceil(BUCKETS as usize),
            len: 0,
        }
    }

    /// A body published under the identity in any bucket counts: after a
    /// conflict both the forged and the genuine body are remembered, and a
    /// copy of either is then a duplicate. The second body of an identity
    /// within one bucket sits in an alternate slot (the identity mixed with
    /// the body digest), so the common case stays one probe a bucket.
    fn lookup(&self, claim: Claim) -> Lookup {
        let (main, alt) = (key(claim.identity), alt_key(claim));
        let mut found = Lookup::Unknown;
        for b in self.buckets.values().rev() {
            match b.map.get(&main) {
                Some(&body) if body == claim.body => return Lookup::Same,
                Some(&body) => {
                    if b.map.get(&alt) == Some(&claim.body) {
                        return Lookup::Same;
                    }
                    if found == Lookup::Unknown {
                        found = Lookup::Differs(body);
                    }
                }
                None => {}
            }
        }
        found
    }

    /// Returns how many identities were evicted early to stay under the
    /// cap.
    fn insert(&mut self, claim: Claim, at: u64) -> usize {
        let time = at / self.span;
        let newest = self
            .buckets
            .values()
            .next_back()
            .map(|b| (b.time, b.map.len()));
        // Older than the window relative to what we hold: nothing to keep.
        if newest.is_some_and(|(t, _)| time + BUCKETS < t) || self.lookup(claim) == Lookup::Same {
            return 0;
        }
        // The newest bucket, unless this confirmation is of a later span
        // or the bucket is full. An older confirmation goes to the newest
        // bucket too: it is then kept a little longer, never shorter.
        let fresh = match newest {
            Some((t, n)) => time > t || n >= self.per_bucket,
            None => true,
        };
        if fresh {
            let time = newest.map_or(time, |(t, _)| time.max(t));
            self.buckets.insert(
                self.next,
                Bucket {
                    time,
                    map: HashMap::default(),
                },
            );
            self.next += 1;
        }
        let Some(b) = self.buckets.values_mut().next_back() else {
            return 0;
        };
        let main = key(claim.identity);
        let slot = if b.map.contains_key(&main) {
            alt_key(claim)
        } else {
            main
        };
        if b.map.insert(slot, claim.body).is_none() {
            self.len += 1;
        }
        let mut evicted = 0;
        while self.len > self.max_entries && self.buckets.len() > 1 {
            if let Some((_, gone)) = self.buckets.pop_first() {
                self.len -= gone.map.len();
                evicted += gone.map.len();
            }
        }
        evicted
    }

    fn expire(&mut self, now: u64) {
        let oldest_kept = now.saturating_sub(self.window) / self.span;
        while let Some((_, b)) = self.buckets.first_key_value() {
            if b.time >= oldest_kept {
                break;
            }
            if let Some((_, gone)) = self.buckets.pop_first() {
                self.len -= gone.map.len();
            }
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes of the maps: hashbrown keeps one control byte beside each
    /// 24-byte slot (16-byte identity, 8-byte body digest), with 1/8 of the
    /// slots always free.
    fn bytes(&self) -> usize {
        self.buckets
            .values()
            .map(|b| b.map.capacity() * 8 / 7 * (24 + 1) + 64)
            .sum()
    }
}

/// The digests are already uniformly random: hashing them again would only
/// cost time. Mixes the words written into 64 bits.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, _len: usize) {
        // Array lengths (written before `[u64; 2]`) carry nothing.
    }
}

type DigestHash = BuildHasherDefault<DigestHasher>;

#[cfg(test)]
mod tests;
