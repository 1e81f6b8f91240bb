//! When has a replica read the whole ledger? Only when Kafka has shown it
//! every partition up to the end it had at start-up: a record at or past
//! that end, or librdkafka's "end of partition" after a fetch that
//! succeeded. An end offset alone proves nothing: it takes `Describe`, while
//! reading takes `Read`, so a replica denied `Read` on an empty ledger once
//! counted it as read and became ready with cross-replica duplicate
//! detection off (issue #22). A refused fetch keeps it (or makes it again)
//! not caught up, and says which right is missing.

use std::collections::BTreeMap;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// The follower's progress towards the end of every ledger partition.
#[derive(Debug, Default)]
pub(crate) struct CatchUp {
    /// Partitions not yet read to the end they had at start-up, each with
    /// that end.
    behind: BTreeMap<i32, i64>,
    /// Why Kafka refused the last read, until a read succeeds again.
    refused: Option<String>,
}

impl CatchUp {
    /// Every partition of the ledger, each with its end offset at start-up
    /// (empty ones too: they are read when a fetch reaches their end).
    pub(crate) fn new(ends: BTreeMap<i32, i64>) -> CatchUp {
        CatchUp {
            behind: ends,
            refused: None,
        }
    }

    /// A record of `partition` at `offset` was read.
    pub(crate) fn record(&mut self, partition: i32, offset: i64) {
        self.refused = None;
        if self
            .behind
            .get(&partition)
            .is_some_and(|&end| offset + 1 >= end)
        {
            self.behind.remove(&partition);
        }
    }

    /// A fetch reached the end of `partition` (librdkafka's
    /// `PartitionEOF`): read to the end, whatever the offsets (the last
    /// offsets of a transactional topic are commit markers, not records;
    /// records at the end may have been deleted).
    pub(crate) fn end_reached(&mut self, partition: i32) {
        self.refused = None;
        self.behind.remove(&partition);
    }

    /// A consumer error: true if Kafka refused the read (an ACL), which is
    /// then kept as the reason the ledger is not read.
    pub(crate) fn refused_by(&mut self, error: &KafkaError, topic: &str) -> bool {
        let Some(why) = refusal(error, topic) else {
            return false;
        };
        self.refused = Some(why);
        true
    }

    /// Why the ledger cannot be read now, when Kafka refused it.
    pub(crate) fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Every partition was read to its start-up end, and the last read
    /// was not refused.
    pub(crate) fn caught_up(&self) -> bool {
        self.behind.is_empty() && self.refused.is_none()
    }
}

/// What to tell the operator when `error` is Kafka refusing to let this
/// principal read `topic`. A refused group is not one: the partitions are
/// assigned, so reads go on (`kafka::client` names the group).
fn refusal(error: &KafkaError, topic: &str) -> Option<String> {
    match error.rdkafka_error_code()? {
        RDKafkaErrorCode::TopicAuthorizationFailed => Some(format!(
            "duplicates ledger {topic}: Kafka refused to let the bridge read it (TopicAuthorizationFailed): grant the bridge's principal Read on topic {topic} (docs/deploy.md, \"ACLs\")"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
