//! An at-least-once consumer's two checks: have I handled this event
//! already, and is it older than what I already applied to its document?
//!
//! Kafka consumers that commit offsets after handling (at least once) see a
//! record again after a crash or a rebalance; POPBiLL itself may deliver an
//! event again (a manual re-run) and promises no order between the events of
//! one document (a retried `Issue` can come after the `NTS`). [`Gate`]
//! answers both questions in memory, bounded by a time window and a count:
//!
//! - **Duplicates**, by `ce_id`, remembered for `window` (by record time).
//! - **Stale events**, per document (`corpNum` + `itemKey`), by `stateDT`:
//!   an event whose `stateDT` is *older* than the newest one applied is
//!   stale. An equal `stateDT` is not (an `OPEN` carries the `stateDT` of
//!   the state it was opened in). Events without a document or a valid
//!   `stateDT` are never stale.
//!
//! By default the memory is the process's own ([`MemoryStore`]). A service
//! that must survive restarts gives the gate a [`GateStore`] over its own
//! database, written in the same transaction as its own state.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::{Delivery, DocumentKey};

/// What to do with a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New, and not older than its document's state: handle it.
    Apply,
    /// Its `ce_id` was handled already: skip it.
    Duplicate,
    /// Older than the state already applied to its document: skip it (or
    /// flag it).
    Stale {
        /// The newest `stateDT` applied to the document.
        applied: Timestamp,
    },
}

/// Deduplication by `ce_id` and per-document ordering by `stateDT`.
///
/// ```
/// use popbill_events::{Gate, RawRecord, Verdict};
/// use std::time::Duration;
///
/// fn tax_invoice(mid: &str, state_dt: &str) -> popbill_events::Delivery {
///     let body = format!(r#"{{"corpNum":"1234567890","itemKey":"K1","stateDT":"{state_dt}"}}"#);
///     RawRecord::new(body.as_bytes())
///         .with_header("ce_id", mid.as_bytes())
///         .with_header("pb-webhook-type", b"TAXINVOICE.STATE")
///         .with_timestamp_millis(1_763_080_211_000)
///         .decode()
///         .expect("a delivery")
/// }
///
/// let mut gate = Gate::new(Duration::from_secs(48 * 3600));
/// let issue = tax_invoice("mid-1", "20251114093010");
/// let nts = tax_invoice("mid-2", "20251115090711");
///
/// assert_eq!(gate.admit(&nts), Verdict::Apply);
/// assert_eq!(gate.admit(&nts), Verdict::Duplicate);
/// // The Issue, retried, arrives after the NTS: stale.
/// assert!(matches!(gate.admit(&issue), Verdict::Stale { .. }));
/// ```
#[derive(Debug)]
pub struct Gate<S = MemoryStore> {
    /// What the gate remembers, and where.
    store: S,
}

/// Where a [`Gate`] keeps what it remembers. [`MemoryStore`] is the
/// process's memory, bounded by a window of record time and a count. A
/// service that must survive restarts implements this over its own
/// database and writes it in the same transaction as its own state, so that
/// "handled" and "remembered" cannot part: a table of handled ids (primary
/// key `ce_id`) and one of documents (`corpNum`, `itemKey` → the newest
/// `stateDT`, updated with `GREATEST`). The Java and Python libraries have
/// the same interface (`GateStore`).
pub trait GateStore {
    /// Whether the delivery with this `ce_id` was handled.
    fn seen(&self, id: &str) -> bool;
    /// The newest `stateDT` applied to `document`, if remembered.
    fn applied_state(&self, document: &DocumentKey) -> Option<Timestamp>;
    /// Records `id` as handled and, when given, the `stateDT` as its
    /// document's state if newer. `at` is the record time (for expiry).
    fn remember(&mut self, id: &str, state: Option<(DocumentKey, Timestamp)>, at: Timestamp);
}

/// The gate's memory in this process: ids and documents remembered for a
/// window of record time, at most a count of each.
#[derive(Debug)]
pub struct MemoryStore {
    /// How long an id or a document is remembered, in record time.
    window: SignedDuration,
    /// At most this many ids, and this many documents.
    max_entries: usize,
    /// Ids handled.
    ids: HashSet<Arc<str>>,
    /// The same ids by record time, oldest first, for expiry.
    id_times: VecDeque<(Timestamp, Arc<str>)>,
    /// Per document: the newest `stateDT` applied, and when it was last
    /// touched (record time).
    documents: HashMap<Arc<DocumentKey>, Applied>,
    /// Documents by the record time of each touch, oldest first; an entry
    /// whose document was touched again since is skipped on expiry.
    document_times: VecDeque<(Timestamp, Arc<DocumentKey>)>,
    /// The newest record time seen: the clock the window runs on.
    now: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy)]
struct Applied {
    state_dt: Timestamp,
    touched: Timestamp,
}

impl Gate<MemoryStore> {
    /// A gate remembering ids and documents for `window` of record time
    /// (the bridge's own window is 48 hours), at most a million of each.
    pub fn new(window: Duration) -> Gate<MemoryStore> {
        Gate {
            store: MemoryStore::new(window),
        }
    }

    /// Remember at most `n` ids and `n` documents (oldest forgotten first).
    pub fn with_max_entries(mut self, n: usize) -> Gate<MemoryStore> {
        self.store.max_entries = n.max(1);
        self
    }

    /// How many ids are remembered.
    pub fn remembered_ids(&self) -> usize {
        self.store.ids.len()
    }

    /// How many documents' states are remembered.
    pub fn remembered_documents(&self) -> usize {
        self.store.documents.len()
    }
}

impl<S: GateStore> Gate<S> {
    /// A gate that keeps what it remembers in `store` (see [`GateStore`]).
    pub fn with_store(store: S) -> Gate<S> {
        Gate { store }
    }

    /// The store, e.g. to commit it with the service's own state.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, given back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// What to do with `d`, without remembering anything.
    pub fn check(&self, d: &Delivery) -> Verdict {
        if self.store.seen(d.id()) {
            return Verdict::Duplicate;
        }
        if let Some((doc, state_dt)) = ordering(d)
            && let Some(applied) = self.store.applied_state(&doc)
            && state_dt < applied
        {
            return Verdict::Stale { applied };
        }
        Verdict::Apply
    }

    /// Remembers `d` as handled: its id, and its `stateDT` as its
    /// document's state when newer. Call it after handling (or skipping) a
    /// delivery, before committing its offset.
    pub fn record(&mut self, d: &Delivery) {
        let at = d.received().unwrap_or_else(Timestamp::now);
        self.store.remember(d.id(), ordering(d), at);
    }

    /// [`check`](Self::check), then [`record`](Self::record) unless a
    /// duplicate: the one call for a consumer that handles a delivery
    /// right after admitting it.
    pub fn admit(&mut self, d: &Delivery) -> Verdict {
        let verdict = self.check(d);
        if verdict != Verdict::Duplicate {
            self.record(d);
        }
        verdict
    }
}

impl MemoryStore {
    /// Remembering for `window` of record time, at most a million ids and
    /// a million documents.
    pub fn new(window: Duration) -> MemoryStore {
        MemoryStore {
            window: SignedDuration::try_from(window).unwrap_or(SignedDuration::MAX),
            max_entries: 1_000_000,
            ids: HashSet::new(),
            id_times: VecDeque::new(),
            documents: HashMap::new(),
            document_times: VecDeque::new(),
            now: None,
        }
    }

    fn expire(&mut self) {
        let Some(now) = self.now else { return };
        let old = |t: Timestamp| now.duration_since(t) > self.window;
        while let Some((t, _)) = self.id_times.front() {
            if !old(*t) && self.ids.len() <= self.max_entries {
                break;
            }
            if let Some((_, id)) = self.id_times.pop_front() {
                self.ids.remove(&id);
            }
        }
        while let Some((t, _)) = self.document_times.front() {
            if !old(*t) && self.documents.len() <= self.max_entries {
                break;
            }
            if let Some((t, doc)) = self.document_times.pop_front()
                && self.documents.get(&doc).is_some_and(|a| a.touched == t)
            {
                self.documents.remove(&doc);
            }
        }
    }
}

impl GateStore for MemoryStore {
    fn seen(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    fn applied_state(&self, document: &DocumentKey) -> Option<Timestamp> {
        self.documents.get(document).map(|a| a.state_dt)
    }

    fn remember(&mut self, id: &str, state: Option<(DocumentKey, Timestamp)>, at: Timestamp) {
        self.now = Some(self.now.map_or(at, |n| n.max(at)));
        if !self.ids.contains(id) {
            let id: Arc<str> = Arc::from(id);
            self.ids.insert(id.clone());
            self.id_times.push_back((at, id));
        }
        if let Some((doc, state_dt)) = state {
            let doc = Arc::new(doc);
            let entry = self.documents.entry(doc.clone()).or_insert(Applied {
                state_dt,
                touched: at,
            });
            entry.state_dt = entry.state_dt.max(state_dt);
            entry.touched = entry.touched.max(at);
            let touched = entry.touched;
            self.document_times.push_back((touched, doc));
        }
        self.expire();
    }
}

/// The document and the `stateDT` instant, when both are known.
fn ordering(d: &Delivery) -> Option<(DocumentKey, Timestamp)> {
    let state_dt = d.state_dt()?.timestamp().ok()?;
    Some((d.document()?, state_dt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RawRecord;

    const T0: i64 = 1_763_114_400_000;

    fn delivery(id: &str, item: &str, state_dt: &str, at_secs: i64) -> Delivery {
        let body =
            format!(r#"{{"corpNum":"1234567890","itemKey":"{item}","stateDT":"{state_dt}"}}"#);
        RawRecord::new(body.as_bytes())
            .with_header("ce_id", id.as_bytes())
            .with_header("pb-webhook-type", b"TAXINVOICE.STATE")
            .with_timestamp_millis(T0 + at_secs * 1000)
            .decode()
            .expect("a delivery")
    }

    #[test]
    fn check_remembers_nothing_record_does() {
        let mut g = Gate::new(Duration::from_secs(60));
        let d = delivery("a", "K", "20251114093010", 0);
        assert_eq!(g.check(&d), Verdict::Apply);
        assert_eq!(g.check(&d), Verdict::Apply);
        g.record(&d);
        assert_eq!(g.check(&d), Verdict::Duplicate);
        assert_eq!(g.admit(&d), Verdict::Duplicate);
    }

    #[test]
    fn equal_state_dt_applies_older_is_stale() {
        let mut g = Gate::new(Duration::from_secs(60));
        assert_eq!(
            g.admit(&delivery("a", "K", "20251114093010", 0)),
            Verdict::Apply
        );
        assert_eq!(
            g.admit(&delivery("b", "K", "20251114093010", 1)),
            Verdict::Apply
        );
        assert!(matches!(
            g.admit(&delivery("c", "K", "20251114093009", 2)),
            Verdict::Stale { .. }
        ));
        // A stale event's id is remembered: its copy is a duplicate.
        assert_eq!(
            g.admit(&delivery("c", "K", "20251114093009", 3)),
            Verdict::Duplicate
        );
        // Invalid or absent stateDT: no ordering, applied.
        assert_eq!(
            g.admit(&delivery("d", "K", "20250230093010", 4)),
            Verdict::Apply
        );
        assert_eq!(g.admit(&delivery("e", "K", "", 5)), Verdict::Apply);
    }

    #[test]
    fn ids_and_documents_expire_after_the_window_of_record_time() {
        let mut g = Gate::new(Duration::from_secs(60));
        g.admit(&delivery("a", "K", "20251114093010", 0));
        assert_eq!(
            g.check(&delivery("a", "K", "20251114093010", 30)),
            Verdict::Duplicate
        );
        // 61 s later (record time), both the id and the document are gone.
        g.admit(&delivery("z", "other", "20251114093010", 61));
        assert_eq!(g.remembered_ids(), 1);
        assert_eq!(g.remembered_documents(), 1);
        assert_eq!(
            g.check(&delivery("a", "K", "20251114093000", 62)),
            Verdict::Apply
        );
    }

    #[test]
    fn a_document_touched_again_is_kept() {
        let mut g = Gate::new(Duration::from_secs(60));
        g.admit(&delivery("a", "K", "20251114093010", 0));
        g.admit(&delivery("b", "K", "20251114093020", 50));
        g.admit(&delivery("c", "other", "20251114093010", 70));
        // K was touched at 50 s: still within the window at 70 s.
        assert!(matches!(
            g.check(&delivery("d", "K", "20251114093015", 71)),
            Verdict::Stale { .. }
        ));
    }

    /// A service's own store, as it would keep it in its database.
    #[derive(Default)]
    struct Table {
        ids: HashSet<String>,
        documents: HashMap<DocumentKey, Timestamp>,
    }

    impl GateStore for Table {
        fn seen(&self, id: &str) -> bool {
            self.ids.contains(id)
        }
        fn applied_state(&self, document: &DocumentKey) -> Option<Timestamp> {
            self.documents.get(document).copied()
        }
        fn remember(&mut self, id: &str, state: Option<(DocumentKey, Timestamp)>, _at: Timestamp) {
            self.ids.insert(id.to_string());
            if let Some((doc, t)) = state {
                let applied = self.documents.entry(doc).or_insert(t);
                *applied = (*applied).max(t);
            }
        }
    }

    #[test]
    fn a_store_of_the_services_own_keeps_what_the_gate_remembered_across_a_restart() {
        // Before: the Rust gate could only remember in memory, where the
        // Java and Python ones take a store.
        let mut g = Gate::with_store(Table::default());
        assert_eq!(
            g.admit(&delivery("a", "K", "20251114093010", 0)),
            Verdict::Apply
        );
        // The process restarts; the table is the service's database.
        let mut g = Gate::with_store(g.into_store());
        assert_eq!(
            g.admit(&delivery("a", "K", "20251114093010", 1)),
            Verdict::Duplicate
        );
        assert!(matches!(
            g.admit(&delivery("b", "K", "20251114093009", 2)),
            Verdict::Stale { .. }
        ));
        assert_eq!(g.store().ids.len(), 2);
    }

    #[test]
    fn the_count_is_capped() {
        let mut g = Gate::new(Duration::from_secs(3600)).with_max_entries(2);
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            g.admit(&delivery(id, id, "20251114093010", i as i64));
        }
        assert_eq!(g.remembered_ids(), 2);
        assert_eq!(g.remembered_documents(), 2);
        assert_eq!(
            g.check(&delivery("a", "a", "20251114093010", 4)),
            Verdict::Apply
        );
        assert_eq!(
            g.check(&delivery("c", "c", "20251114093010", 4)),
            Verdict::Duplicate
        );
    }
}
