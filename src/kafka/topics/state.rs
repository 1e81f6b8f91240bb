//! What the bridge knows of one topic: present (every partition serving),
//! missing, not serving yet, or not known; and why, when Kafka said.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tracing::{info, warn};

use crate::telemetry::logging::LastSaid;

const UNKNOWN: u8 = 0;
/// Listed, and every partition's leader answered (see [`serving`]).
pub(super) const PRESENT: u8 = 1;
pub(super) const MISSING: u8 = 2;
/// Listed, but a partition (a new one, or one added since) has not yet
/// answered on its leader: nothing is written to it yet.
pub(super) const NOT_SERVING: u8 = 3;

pub(super) struct TopicState {
    pub(super) name: Arc<str>,
    pub(super) state: AtomicU8,
    /// Why Kafka refused to create it, naming the setting that fixes it;
    /// cleared once it exists.
    pub(super) cannot_create: LastSaid,
    /// Why the last creation did not finish (a timeout, a busy or moving
    /// controller, a quota: Kafka may yet create it); cleared by an
    /// answer that says more.
    pub(super) unfinished: LastSaid,
    /// When that answer came: one plus the milliseconds from `since`; 0
    /// for none. Within [`CREATION_RETRY`] of it deliveries are answered
    /// at once instead of each asking Kafka again.
    pub(super) unfinished_at: AtomicU64,
    /// "missing and topics.create is false" was logged (once, not every
    /// readiness round).
    pub(super) said_missing: AtomicBool,
    /// Partitions seen answering on their leaders; the topic is present
    /// once this reaches the partitions the last metadata listed.
    pub(super) serving: AtomicUsize,
    /// Why a listed topic does not serve yet (the partition and Kafka's
    /// answer); cleared once it does.
    pub(super) not_serving: LastSaid,
    /// When Kafka last denied the bridge Write on it (an ACL): one plus
    /// the milliseconds from `since`; 0 for none, or none since a write
    /// succeeded. One atomic, so that every delivery only loads it.
    pub(super) write_denied: AtomicU64,
    /// What `write_denied` counts from: when the state was made.
    pub(super) since: Instant,
    /// Its `min.insync.replicas`, as the settings check last read it (0:
    /// not read).
    pub(super) min_insync: std::sync::atomic::AtomicI64,
    /// Its partitions below `min.insync.replicas`, as the last metadata
    /// showed them, and why that stops writes; cleared once none is.
    pub(super) starved: LastSaid,
    pub(super) starved_partitions: AtomicUsize,
}

/// How long `/readyz` lists a topic after a write to it was denied: the
/// denial is only seen when a delivery is routed there, and POPBiLL's
/// retries may come minutes apart.
pub(super) const DENIAL_KEPT: Duration = Duration::from_secs(600);

/// After a denied write, deliveries to the topic are answered at once for
/// this long; then one goes to Kafka again, to see whether the ACL was
/// granted. Each try costs an aborted transaction (and, when the abort is
/// refused, a new writer), so not every delivery makes one.
pub(super) const DENIAL_RETRY: Duration = Duration::from_secs(10);

/// After a creation that did not finish, deliveries to the topic are
/// answered at once for this long; then the next one asks again. A slow or
/// throttling controller is not sent one CreateTopics a delivery.
pub(super) const CREATION_RETRY: Duration = Duration::from_secs(1);

impl TopicState {
    /// A topic nothing is known of yet.
    pub(super) fn new(name: Arc<str>) -> TopicState {
        TopicState {
            name,
            state: AtomicU8::new(UNKNOWN),
            cannot_create: LastSaid::default(),
            unfinished: LastSaid::default(),
            unfinished_at: AtomicU64::new(0),
            said_missing: AtomicBool::new(false),
            serving: AtomicUsize::new(0),
            not_serving: LastSaid::default(),
            write_denied: AtomicU64::new(0),
            since: Instant::now(),
            min_insync: std::sync::atomic::AtomicI64::new(0),
            starved: LastSaid::default(),
            starved_partitions: AtomicUsize::new(0),
        }
    }

    /// When a write to it was last denied, unless one succeeded since.
    fn denied_at(&self) -> Option<Instant> {
        instant_at(self.since, self.write_denied.load(Ordering::Acquire))
    }

    /// A write to it was denied (`at`); logged when a bout of denials
    /// starts.
    pub(super) fn set_write_denied(&self, at: Instant) {
        let m = millis_since(self.since, at);
        let before = self.write_denied.swap(m, Ordering::AcqRel);
        let new_bout = instant_at(self.since, before)
            .is_none_or(|last| at.saturating_duration_since(last) > DENIAL_KEPT);
        if new_bout {
            warn!(topic = %self.name, "Kafka denies the bridge Write on this topic (TopicAuthorizationFailed): deliveries routed to it get 503 until its principal is granted Write (docs/deploy.md, ACLs)");
        }
    }

    /// Whether a write to it was denied within [`DENIAL_RETRY`] of now:
    /// answer at once, without a transaction. The clock is read only when
    /// there is a denial.
    pub(super) fn denied_lately(&self) -> bool {
        self.denied_at()
            .is_some_and(|at| at.elapsed() < DENIAL_RETRY)
    }

    /// A write to it succeeded: a denial is over.
    pub(super) fn written(&self) {
        // A load, not a swap, on every delivery: a write to the shared
        // cache line only when there is a denial to end.
        if self.write_denied.load(Ordering::Relaxed) != 0
            && self.write_denied.swap(0, Ordering::AcqRel) != 0
        {
            info!(topic = %self.name, "Kafka takes writes to this topic again");
        }
    }

    /// Why writes to it fail, if one was denied within [`DENIAL_KEPT`] of
    /// `now`.
    pub(super) fn write_denial(&self, now: Instant) -> Option<String> {
        let last = self.denied_at()?;
        let ago = now.saturating_duration_since(last);
        (ago <= DENIAL_KEPT).then(|| {
            format!(
                "Kafka denied the bridge Write on topic {} {}s ago (TopicAuthorizationFailed): grant its principal Write on topic {} (docs/deploy.md, ACLs); deliveries routed there get 503",
                self.name,
                ago.as_secs(),
                self.name
            )
        })
    }

    /// Records which partitions have too few in-sync replicas to take a
    /// write (`starved`, as [`starvation`] says it), logging changes.
    pub(super) fn set_starved(&self, starved: Option<(usize, String)>) {
        let (n, text) = starved.map_or((0, None), |(n, t)| (n, Some(t)));
        self.starved_partitions
            .store(n, std::sync::atomic::Ordering::Release);
        let was = self.starved.get().is_some();
        let cleared = was && text.is_none();
        if let Some(t) = self.starved.update(text) {
            warn!(topic = %self.name, problem = %t, "partitions below min.insync.replicas: writes to them fail; not ready");
        } else if cleared {
            info!(topic = %self.name, "every partition has its min.insync.replicas in sync again");
        }
    }

    /// Records why the last creation did not finish (`None`: it finished,
    /// or was refused), logging only changes.
    pub(super) fn set_unfinished(&self, why: Option<String>) {
        let m = match why {
            Some(_) => millis_since(self.since, Instant::now()),
            None => 0,
        };
        self.unfinished_at.store(m, Ordering::Release);
        if let Some(w) = self.unfinished.update(why) {
            warn!(topic = %self.name, cause = %w, "Kafka did not finish creating the topic: deliveries routed to it get 503 and the next one after 1 s (or the readiness round) asks again");
        }
    }

    /// Why the last creation did not finish, if that was within
    /// [`CREATION_RETRY`]: answer at once. An atomic load when there is
    /// none.
    pub(super) fn unfinished_lately(&self) -> Option<String> {
        instant_at(self.since, self.unfinished_at.load(Ordering::Acquire))
            .filter(|at| at.elapsed() < CREATION_RETRY)
            .and_then(|_| self.unfinished.get())
    }

    pub(super) fn cause(&self) -> Option<String> {
        self.cannot_create.get()
    }

    /// Records why the topic does not serve yet (or that it does now),
    /// logging only changes.
    pub(super) fn set_not_serving(&self, cause: Option<String>) {
        if let Some(c) = self.not_serving.update(cause) {
            warn!(topic = %self.name, cause = %c, "topic exists but a partition's leader does not answer yet: nothing is written to it until it does; deliveries routed to it get 503");
        }
    }

    /// Records why creation failed (or that it no longer does), logging
    /// only changes: the readiness loop retries every few seconds.
    pub(super) fn set_cause(&self, cause: Option<String>) {
        if let Some(c) = self.cannot_create.update(cause) {
            warn!(topic = %self.name, cause = %c, "topic does not exist and Kafka refused to create it: deliveries routed to it get 503 and readiness fails until it exists");
        }
    }
}

/// What the readiness round and the answers learn of the topics beyond
/// their existence: writes the authorizer denied, partitions too short of
/// in-sync replicas to take a write.
impl super::Topics {
    /// A delivery routed by `route` was written: a denial of its topic,
    /// if any, is over (an atomic load when there is none).
    pub(crate) fn note_written(&self, route: &crate::route::Route) {
        self.by_route[route.id].written();
    }

    /// A delivery failed with `e`: a denied write is kept for readiness
    /// and for the next deliveries to the topic.
    pub(crate) fn note_failure(&self, e: &crate::error::BridgeError) {
        if let crate::error::BridgeError::WriteDenied { topic } = e
            && let Some(st) = self.all.iter().find(|st| &*st.name == topic.as_str())
        {
            st.set_write_denied(Instant::now());
        }
    }

    /// The topics a write was lately denied on, each saying which ACL to
    /// grant: `/readyz` warnings (not failures: the other topics still
    /// take deliveries).
    pub(crate) fn write_denials(&self) -> Vec<String> {
        let now = Instant::now();
        self.all
            .iter()
            .filter_map(|st| st.write_denial(now))
            .collect()
    }

    /// Topics with partitions below their `min.insync.replicas`, each
    /// saying so, and how many such partitions in all: readiness fails
    /// while any is (with transactions one such record aborts its whole
    /// group), and comes back when the metadata shows them in sync again.
    pub(crate) fn starved(&self) -> (Vec<String>, usize) {
        let said = self.all.iter().filter_map(|t| t.starved.get()).collect();
        let partitions = self
            .all
            .iter()
            .map(|t| {
                t.starved_partitions
                    .load(std::sync::atomic::Ordering::Acquire)
            })
            .sum();
        (said, partitions)
    }
}

/// The partitions (`(id, in-sync replicas)`) of `topic` that cannot take a
/// write with `min_insync` replicas required, counted and said; `None`
/// when every one can.
pub(super) fn starvation(
    topic: &str,
    partitions: &[(i32, usize)],
    min_insync: i64,
) -> Option<(usize, String)> {
    let starved: Vec<&(i32, usize)> = partitions
        .iter()
        .filter(|(_, isr)| (*isr as i64) < min_insync)
        .collect();
    let (first, isr) = starved.first()?;
    Some((
        starved.len(),
        format!(
            "{} of {} partition(s) of topic {topic} have fewer in-sync replicas than its min.insync.replicas = {min_insync} (partition {first}: {isr}): every write to them fails (NOT_ENOUGH_REPLICAS) until brokers come back",
            starved.len(),
            partitions.len()
        ),
    ))
}

/// `at` as one plus the milliseconds from `since`: never 0, which stands
/// for "none" in the atomics that keep such times.
fn millis_since(since: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX - 1) + 1
}

/// The time [`millis_since`] kept as `m`; none for 0.
fn instant_at(since: Instant, m: u64) -> Option<Instant> {
    m.checked_sub(1).map(|ms| since + Duration::from_millis(ms))
}

#[cfg(test)]
mod tests;
