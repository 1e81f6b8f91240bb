//! Exactly one record per event: each delivery's record and its duplicates
//! ledger line are written in one Kafka transaction, many deliveries to a
//! transaction.
//!
//! Without transactions a write can land after the bridge gave up on it
//! (503), and librdkafka's idempotent producer can repeat a record after
//! an epoch bump (librdkafka #4953): POPBiLL's retry is then a second
//! record. With them, a record is visible to a `read_committed` consumer
//! only if its transaction committed, and the bridge answers:
//!
//! - `OK` only after the commit;
//! - 503 only once Kafka confirmed the abort (or the transaction never
//!   asked to commit: then it can only abort);
//! - when the commit's outcome is unknown (the commit failed in a way that
//!   does not say whether it happened: a fatal error, a fenced writer),
//!   neither until the outcome is settled: the first record of the
//!   transaction is read back `read_committed` ([`outcome`]). Within the
//!   request's deadline the answer is the settled one; past it the request
//!   gets 503, the settlement goes on, and a commit it finds is remembered,
//!   so the retry is a duplicate — and the ledger line committed with the
//!   record tells every other replica the same.
//!
//! [`group`] holds the writers and the group commit. The settings are
//! `[kafka.transactions]` (see `docs/configuration.md`).

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub(crate) mod group;
pub(crate) mod outcome;

pub(crate) use group::{GroupCommit, LedgerRecords, LineWriter, Withdrawal};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransactionsConfig {
    /// Write each delivery and its ledger line in one Kafka transaction,
    /// committed in groups. Off: the idempotent producer of earlier
    /// versions (a broker fault can then show consumers a duplicate).
    pub enabled: bool,
    /// This replica's stable name: its writers' `transactional.id`s are
    /// `<id>-0`, `<id>-1`, .... A replica restarted under the same name
    /// fences its former self and settles its open transactions at once.
    /// Empty: `<kafka.client_id>-<host name>-<webhook port>` (on
    /// Kubernetes the host name is the pod's name).
    pub id: String,
    /// Transactional producers in this process. One transaction is open
    /// on each at a time: while one commits, another takes deliveries.
    pub(crate) producers: usize,
    /// With more than two producers: how long a group may wait for a
    /// commit in progress before it commits beside it. With two, a group
    /// commits as soon as the previous commit ends.
    #[serde(with = "humantime_serde")]
    pub(crate) commit_interval: Duration,
    /// librdkafka `transaction.timeout.ms`: how long the coordinator waits
    /// for a silent writer before it aborts the open transaction. Bounds
    /// how long a replica that died mid-transaction holds back
    /// `read_committed` consumers of the partitions it wrote (unless it
    /// restarts under the same id first).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        TransactionsConfig {
            enabled: true,
            id: String::new(),
            producers: 4,
            commit_interval: Duration::from_millis(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Longest `kafka.transactions.id`: the broker keeps it in its
/// transaction log, and the writers' ids add a suffix.
const MAX_ID_BYTES: usize = 200;

impl TransactionsConfig {
    /// Every problem of this section, each saying what to change.
    /// `message_timeout` is `kafka.message_timeout`: librdkafka refuses a
    /// record timeout longer than the transaction's.
    pub(crate) fn check(&self, message_timeout: Duration) -> Vec<String> {
        let mut errs = Vec::new();
        if !self.enabled {
            return errs;
        }
        if !(2..=16).contains(&self.producers) {
            errs.push(format!(
                "kafka.transactions.producers {} is out of range: use 2 to 16 (one takes deliveries while another commits)",
                self.producers
            ));
        }
        if self.id.len() > MAX_ID_BYTES || self.id.chars().any(|c| c.is_control()) {
            errs.push(format!(
                "kafka.transactions.id must be at most {MAX_ID_BYTES} bytes without control characters"
            ));
        }
        if self.commit_interval > Duration::from_secs(1) {
            errs.push(
                "kafka.transactions.commit_interval above 1s only delays answers: use a few milliseconds"
                    .into(),
            );
        }
        if self.timeout < message_timeout + Duration::from_secs(1) {
            errs.push(format!(
                "kafka.transactions.timeout {} must be at least kafka.message_timeout ({}) plus 1s: a transaction stays open while its records are retried",
                humantime::format_duration(self.timeout),
                humantime::format_duration(message_timeout)
            ));
        }
        if self.timeout > Duration::from_secs(900) {
            errs.push(
                "kafka.transactions.timeout above 15m exceeds the broker default transaction.max.timeout.ms; use 10s to 60s".into(),
            );
        }
        errs
    }

    /// The writers' common name: the configured id, or one stable for this
    /// host and port (`listen_port`: the webhook's).
    pub(crate) fn id_prefix(&self, client_id: &str, listen_port: u16) -> String {
        if !self.id.is_empty() {
            return self.id.clone();
        }
        format!("{client_id}-{}-{listen_port}", host_name())
    }
}

/// A transactional writer's librdkafka settings: the producer's, its
/// `transactional.id`, and the transaction timeout.
pub(crate) fn writer_config(
    producer: &rdkafka::config::ClientConfig,
    id: &str,
    timeout: Duration,
) -> rdkafka::config::ClientConfig {
    let mut c = producer.clone();
    c.set("transactional.id", id)
        .set("transaction.timeout.ms", timeout.as_millis().to_string());
    // librdkafka's linger (5 ms by default) stays: records batch while a
    // group gathers, and the seal sends what still lingers at once
    // (`ending::send_lingering`). With `linger.ms = 0` every record was a
    // produce request and a wake-up of the writer's broker thread: twice
    // the librdkafka CPU a delivery (docs/performance.md).
    c
}

/// This machine's name (on Kubernetes, the pod's), `localhost` when it
/// cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests;
