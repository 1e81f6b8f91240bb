//! What the authorizer refused the bridge's clients outside any request
//! the bridge awaits, as librdkafka reports it: a transactional writer's
//! partitions of a topic (its `ADDPARTS` log line: the records themselves
//! only say "purged"), and a consumer's group (the error callback: the
//! readers assign their partitions, so only the lookup of the group's
//! coordinator is refused, once, and retried without another word).

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Denials {
    /// Topics a transactional writer was lately refused, each with when.
    topics: Mutex<Vec<(String, Instant)>>,
    /// Groups refused to the bridge's principal, each with the operation
    /// its reader needs. Kept until the process ends: librdkafka says it
    /// once and nothing says when it is granted.
    groups: Mutex<Vec<(String, &'static str)>>,
}

impl Denials {
    /// A librdkafka log line: kept when it says the authorizer refused to
    /// add a topic's partition to a transaction.
    pub(crate) fn log_line(&self, fac: &str, message: &str) {
        if let Some(topic) = denied_topic(fac, message)
            && let Ok(mut denied) = self.topics.lock()
        {
            // The latest denial of each topic: bounded by the topics the
            // bridge writes.
            denied.retain(|(t, _)| t != topic);
            denied.push((topic.to_string(), Instant::now()));
        }
    }

    /// Whether the authorizer refused a transactional write to `topic`
    /// within `within`.
    pub(crate) fn topic_within(&self, topic: &str, within: Duration) -> bool {
        self.topics.lock().is_ok_and(|denied| {
            denied
                .iter()
                .any(|(t, at)| t == topic && at.elapsed() <= within)
        })
    }

    /// `group` was refused; true the first time (bounded by the groups the
    /// bridge uses: the ledger's, the read-back's, redrive's).
    pub(crate) fn group(&self, group: &str, operation: &'static str) -> bool {
        self.groups.lock().is_ok_and(|mut groups| {
            let first = !groups.iter().any(|(g, _)| g == group);
            if first {
                groups.push((group.to_string(), operation));
            }
            first
        })
    }

    /// The groups refused so far, each with the operation it needs.
    pub(crate) fn groups(&self) -> Vec<(String, &'static str)> {
        self.groups.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// What `/readyz` and the log say of a refused group: the group, the
/// operation, the ACL, and why deliveries go on.
pub(crate) fn refused_group(group: &str, operation: &str) -> String {
    format!(
        "Kafka refused the bridge {operation} on group {group} (GroupAuthorizationFailed): grant its principal {operation} on group {group} (docs/deploy.md, ACLs); the reader of that group assigns its partitions, so it still reads, but librdkafka keeps looking for the group's coordinator (said until the bridge restarts)"
    )
}

/// The topic of librdkafka's line saying the authorizer refused to add one
/// of its partitions to a transaction (`ADDPARTS`: `Failed to add partition
/// "<topic>" [<n>] to transaction: Broker: Topic authorization failed`).
fn denied_topic<'a>(fac: &str, message: &'a str) -> Option<&'a str> {
    if fac != "ADDPARTS" || !message.ends_with("Topic authorization failed") {
        return None;
    }
    let (_, rest) = message.split_once("Failed to add partition \"")?;
    let (topic, _) = rest.split_once("\" [")?;
    Some(topic)
}

#[cfg(test)]
mod tests;
