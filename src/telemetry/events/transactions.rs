//! The group commit's events: a writer ready or refused, and how each
//! transaction ended.

use std::time::Duration;

use tracing::{debug, error, info, warn};

use crate::labels::TransactionOutcome;
use crate::telemetry::metrics::Metrics;

/// A transactional writer was initialised (`init_transactions`): any open
/// transaction a former holder of its id left is now settled.
pub(crate) fn transactional_writer_ready(writer: &str) {
    info!(writer, "transactional writer ready");
}

/// A transactional writer could not be initialised; `problem` names the
/// fix, and readiness shows it until a writer is ready.
pub(crate) fn transactional_writer_refused(writer: &str, problem: &str) {
    warn!(writer, problem, "transactional writer not ready; retrying");
}

/// A transaction of `writer` could not be ended (`error`: an abort Kafka
/// refused, or a commit that failed fatally without a fence): the writer
/// is replaced by a new producer under the same id, which ends what was
/// left open; readiness waits for it.
pub(crate) fn transactional_writer_replaced(writer: &str, error: &str) {
    warn!(
        writer,
        error,
        "a transactional writer failed (not fenced by another process); replacing it (its successor ends what was open)"
    );
}

/// A group of `deliveries` committed: every one of them is answered `OK`.
pub(crate) fn transaction_committed(
    metrics: &Metrics,
    writer: &str,
    deliveries: u64,
    took: Duration,
) {
    transaction_ended(metrics, TransactionOutcome::Committed, deliveries, took);
    debug!(
        writer,
        deliveries,
        seconds = took.as_secs_f64(),
        "transaction committed"
    );
}

/// A group aborted (or never asked to commit): none of its records is
/// visible, each delivery is answered 503.
pub(crate) fn transaction_aborted(
    metrics: &Metrics,
    writer: &str,
    deliveries: u64,
    cause: &dyn std::fmt::Display,
    took: Duration,
) {
    transaction_ended(metrics, TransactionOutcome::Aborted, deliveries, took);
    warn!(
        writer,
        deliveries,
        cause = %cause,
        "transaction aborted: none of its records is visible; each delivery is answered 503 and retried"
    );
}

/// A group whose commit outcome stayed unknown by the settlement deadline.
pub(crate) fn transaction_unsettled(
    metrics: &Metrics,
    writer: &str,
    deliveries: u64,
    cause: &dyn std::fmt::Display,
    took: Duration,
) {
    transaction_ended(metrics, TransactionOutcome::Unsettled, deliveries, took);
    error!(
        writer,
        deliveries,
        cause = %cause,
        "transaction outcome unknown: its deliveries are answered 503; the bridge restarts, and its successor under the same transactional id settles the transaction"
    );
}

fn transaction_ended(
    metrics: &Metrics,
    outcome: TransactionOutcome,
    deliveries: u64,
    took: Duration,
) {
    let t = &metrics.transactions;
    t.ended[outcome as usize].inc();
    t.deliveries.observe(deliveries as f64);
    t.duration.observe(took.as_secs_f64());
}
