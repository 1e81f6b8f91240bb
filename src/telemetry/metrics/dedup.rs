//! The duplicates part's metrics: the memory of identities (its size and
//! early evictions), the ledger (writes, failures, caught up) and the
//! conflicts between a remembered identity and a new body.

use prometheus::{IntCounter, IntGauge, Registry};

use crate::telemetry::metrics::{Metrics, clamp, counter, gauge};

pub(super) struct DedupMetrics {
    pub(super) remembered: IntGauge,
    pub(super) memory_bytes: IntGauge,
    pub(super) evicted: IntCounter,
    pub(super) ledger_writes: IntCounter,
    pub(super) ledger_write_failures: IntCounter,
    pub(super) ledger_caught_up: IntGauge,
    pub(super) conflicts: IntCounter,
}

impl DedupMetrics {
    pub(super) fn new(registry: &Registry) -> DedupMetrics {
        let remembered = gauge(
            registry,
            "dedup_remembered_events",
            "Event identities remembered for duplicate detection (this replica).",
        );
        let memory_bytes = gauge(
            registry,
            "dedup_memory_bytes",
            "Heap bytes of the remembered identities; divide by dedup_remembered_events for bytes per event.",
        );
        let ledger_caught_up = gauge(
            registry,
            "dedup_ledger_caught_up",
            "1 once the duplicates ledger has been read up to its end at start-up.",
        );
        let evicted = counter(
            registry,
            "dedup_evicted_total",
            "Identities forgotten before the window ended because dedup.max_entries was reached.",
        );
        let ledger_writes = counter(
            registry,
            "dedup_ledger_writes_total",
            "Events written to the duplicates ledger: one line each, many lines to a ledger record.",
        );
        let conflicts = counter(
            registry,
            "dedup_conflicts_total",
            "Deliveries whose identity (MID or content key) was already remembered with a different body: published, not treated as duplicates.",
        );
        let ledger_write_failures = counter(
            registry,
            "dedup_ledger_write_failures_total",
            "Events whose ledger lines Kafka did not confirm; a later copy of those events would be published again.",
        );
        DedupMetrics {
            remembered,
            memory_bytes,
            evicted,
            ledger_writes,
            ledger_write_failures,
            ledger_caught_up,
            conflicts,
        }
    }
}

impl Metrics {
    /// The size of the duplicate memory, and identities evicted early.
    pub(crate) fn set_dedup_memory(&self, remembered: usize, bytes: usize, evicted: usize) {
        self.dedup_remembered.set(clamp(remembered as u64));
        self.dedup_memory_bytes.set(clamp(bytes as u64));
        if evicted > 0 {
            self.dedup_evicted.inc_by(evicted as u64);
        }
    }
}
