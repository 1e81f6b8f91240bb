//! Settings of existing topics (and the broker) that break a promise of the
//! bridge, each said with the setting to change. Pure functions over what
//! DescribeConfigs and the metadata returned, so every rule is unit-tested
//! without a broker; `Topics` fetches the facts and keeps the verdicts.
//!
//! - **Record size** (delivery topics): `max.message.bytes` below the
//!   largest record the bridge writes for a body it accepts — such a body
//!   would get 503 on every retry.
//! - **Durability** (every topic): `min.insync.replicas` below what
//!   `topics.settings` asks for, or below 2 on a topic with 3 or more
//!   replicas — an `OK` would then rest on a single copy. Above the replica
//!   count, every write fails: that one blocks readiness.
//! - **Duplicates ledger**: `retention.ms` shorter than `dedup.window` — a
//!   copy arriving later than the retention would be published again after
//!   a restart.

use std::time::Duration;

/// One problem with the cluster's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// What is wrong, and the setting to change.
    pub text: String,
    /// Nothing can be published while it lasts: readiness fails. The
    /// others are listed by `/readyz` (which stays 200: failing it would
    /// stop every delivery, not only the ones at risk) and logged.
    pub blocking: bool,
}

/// What a topic is for: the checks differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Routed, fallback or dead-letter: takes deliveries.
    Delivery,
    /// The duplicates ledger.
    Ledger,
}

/// What the bridge's configuration needs from the cluster.
#[derive(Debug, Clone)]
pub struct Needs {
    /// `publish::max_record_bytes`.
    pub(crate) record_bytes: usize,
    /// For the message: `server.max_body_bytes`, `limits.max_header_bytes`.
    pub max_body_bytes: usize,
    pub(crate) max_header_bytes: usize,
    /// `topics.settings`' `min.insync.replicas`, when it sets one.
    pub(crate) min_insync_replicas: Option<i64>,
    /// `dedup.window`, when duplicate detection is on.
    pub(crate) dedup_window: Option<Duration>,
}

/// What Kafka says about one existing topic.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicFacts {
    pub name: String,
    /// Fewest replicas of any partition (metadata).
    pub replicas: usize,
    /// `max.message.bytes`, `min.insync.replicas`, `retention.ms`, as
    /// DescribeConfigs gave them (absent when it did not).
    pub(crate) max_message_bytes: Option<i64>,
    pub(crate) min_insync_replicas: Option<i64>,
    pub(crate) retention_ms: Option<i64>,
}

pub(crate) fn check_topic(role: Role, t: &TopicFacts, needs: &Needs) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    let name = &t.name;
    if role == Role::Delivery
        && let Some(have) = t.max_message_bytes
        && have < needs.record_bytes as i64
    {
        out.push(ConfigProblem {
            text: format!(
                "topic {name} takes records up to {have} bytes (max.message.bytes), but a delivery \
                 the bridge accepts (server.max_body_bytes = {}, headers up to \
                 limits.max_header_bytes = {}) can need {}: raise the topic's max.message.bytes \
                 to {}, or lower server.max_body_bytes",
                needs.max_body_bytes,
                needs.max_header_bytes,
                needs.record_bytes,
                needs.record_bytes
            ),
            blocking: false,
        });
    }
    if let Some(isr) = t.min_insync_replicas {
        let replicas = t.replicas as i64;
        if replicas > 0 && isr > replicas {
            out.push(ConfigProblem {
                text: format!(
                    "topic {name} has min.insync.replicas = {isr} but {replicas} replica(s): every \
                     write fails (NOT_ENOUGH_REPLICAS); lower the topic's min.insync.replicas to \
                     {replicas} or add replicas"
                ),
                blocking: true,
            });
        } else {
            let risk = format!("an OK may rest on {isr} copy(ies) and be lost with one broker");
            let text = match needs.min_insync_replicas {
                Some(w) if isr < w && w <= replicas => Some(format!(
                    "topic {name} has min.insync.replicas = {isr}, below topics.settings' \
                     min.insync.replicas = {w}: {risk}; raise the topic's min.insync.replicas \
                     to {w}"
                )),
                // Raising it would stop every write: the replicas are short.
                Some(w) if isr < w => Some(format!(
                    "topic {name} has {replicas} replica(s) and min.insync.replicas = {isr}, \
                     below topics.settings' min.insync.replicas = {w}: {risk}; add replicas to \
                     the topic, or lower topics.settings' min.insync.replicas"
                )),
                _ if replicas >= 3 && isr < 2 => Some(format!(
                    "topic {name} has min.insync.replicas = {isr}, below 2 with {replicas} \
                     replicas: {risk}; raise the topic's min.insync.replicas to 2"
                )),
                _ => None,
            };
            out.extend(text.map(|text| ConfigProblem {
                text,
                blocking: false,
            }));
        }
    }
    if role == Role::Ledger
        && let (Some(window), Some(ms)) = (needs.dedup_window, t.retention_ms)
        // -1: kept forever.
        && ms >= 0
        && (ms as u128) < window.as_millis()
    {
        out.push(ConfigProblem {
            text: format!(
                "duplicates ledger {name} keeps records for retention.ms = {ms} ({}), less than \
                 dedup.window ({}): after a restart a copy arriving later than that is published \
                 again; raise the topic's retention.ms to at least {} (the bridge creates it with \
                 twice the window), or lower dedup.window",
                humantime::format_duration(Duration::from_millis(ms as u64)),
                humantime::format_duration(window),
                window.as_millis()
            ),
            blocking: false,
        });
    }
    out
}

/// The broker's default record limit. Not a readiness problem — topics the
/// bridge creates carry their own `max.message.bytes`, and existing topics
/// are checked one by one — but topics created elsewhere inherit it.
pub(crate) fn check_broker(broker: i32, message_max_bytes: i64, needs: &Needs) -> Option<String> {
    (message_max_bytes < needs.record_bytes as i64).then(|| {
        format!(
            "broker {broker} has message.max.bytes = {message_max_bytes}, below the {} bytes a \
             delivery can need: topics the bridge creates carry max.message.bytes = {} of their \
             own, but topics created elsewhere inherit the broker's; raise message.max.bytes, or \
             set max.message.bytes on those topics",
            needs.record_bytes, needs.record_bytes
        )
    })
}

#[cfg(test)]
mod tests;
