//! The `[dedup]` section of the configuration, and the checks that say
//! what to change when it is wrong (its own values, and its ledger topic
//! against the routes).

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::route::{Route, Router};

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
    pub(crate) create_ledger: bool,
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
    pub(crate) fn check_topic(&self, router: &Router) -> Vec<String> {
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
