//! The group commit's metrics (`kafka.transactions`): how transactions
//! ended, how many deliveries each carried, and how long each took.

use prometheus::{Histogram, IntCounter, Registry};

use crate::labels::TransactionOutcome;
use crate::telemetry::metrics::{LATENCY_BUCKETS, histogram, per_value};

/// The group commit's metrics (`kafka.transactions`).
pub(in crate::telemetry) struct TransactionMetrics {
    /// By [`TransactionOutcome`], in its order.
    pub(in crate::telemetry) ended: Vec<IntCounter>,
    pub(in crate::telemetry) deliveries: Histogram,
    pub(in crate::telemetry) duration: Histogram,
}

/// Deliveries in one transaction: one at low traffic, up to the in-flight
/// limit under load.
const GROUP_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

impl TransactionMetrics {
    pub(super) fn new(registry: &Registry) -> TransactionMetrics {
        TransactionMetrics {
            ended: per_value(
                registry,
                "transactions_total",
                "Transactions of the group commit by how they ended: committed, aborted (nothing of it visible), unsettled (the outcome unknown by the deadline).",
                "outcome",
                TransactionOutcome::ALL.iter().map(|o| o.as_str()),
            ),
            deliveries: histogram(
                registry,
                "transaction_deliveries",
                "Deliveries per transaction of the group commit.",
                GROUP_SIZE_BUCKETS,
            ),
            duration: histogram(
                registry,
                "transaction_duration_seconds",
                "Time from sealing a group to its commit or abort (reports awaited, ledger lines written, commit).",
                LATENCY_BUCKETS,
            ),
        }
    }
}
