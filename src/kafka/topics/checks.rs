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
pub enum Role {
    /// Routed, fallback or dead-letter: takes deliveries.
    Delivery,
    /// The duplicates ledger.
    Ledger,
}

/// What the bridge's configuration needs from the cluster.
#[derive(Debug, Clone)]
pub struct Needs {
    /// `publish::max_record_bytes`.
    pub record_bytes: usize,
    /// For the message: `server.max_body_bytes`, `limits.max_header_bytes`.
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    /// `topics.settings`' `min.insync.replicas`, when it sets one.
    pub min_insync_replicas: Option<i64>,
    /// `dedup.window`, when duplicate detection is on.
    pub dedup_window: Option<Duration>,
}

/// What Kafka says about one existing topic.
#[derive(Debug, Clone, Default)]
pub struct TopicFacts {
    pub name: String,
    /// Fewest replicas of any partition (metadata).
    pub replicas: usize,
    /// `max.message.bytes`, `min.insync.replicas`, `retention.ms`, as
    /// DescribeConfigs gave them (absent when it did not).
    pub max_message_bytes: Option<i64>,
    pub min_insync_replicas: Option<i64>,
    pub retention_ms: Option<i64>,
}

pub fn check_topic(role: Role, t: &TopicFacts, needs: &Needs) -> Vec<ConfigProblem> {
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
pub fn check_broker(broker: i32, message_max_bytes: i64, needs: &Needs) -> Option<String> {
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
mod tests {
    use super::*;

    fn needs() -> Needs {
        Needs {
            record_bytes: 1_083_000,
            max_body_bytes: 1_048_576,
            max_header_bytes: 16_384,
            min_insync_replicas: Some(2),
            dedup_window: Some(Duration::from_secs(48 * 3600)),
        }
    }

    fn topic(replicas: usize, isr: i64) -> TopicFacts {
        TopicFacts {
            name: "t".into(),
            replicas,
            max_message_bytes: Some(2_000_000),
            min_insync_replicas: Some(isr),
            retention_ms: Some(-1),
        }
    }

    #[test]
    fn item4_a_topic_below_the_largest_record_is_named_with_the_setting() {
        let mut t = topic(3, 2);
        t.max_message_bytes = Some(1_048_588);
        let p = check_topic(Role::Delivery, &t, &needs());
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(!p[0].blocking);
        assert!(
            p[0].text
                .contains("raise the topic's max.message.bytes to 1083000")
        );
        // The ledger's records are small: not checked there.
        assert!(check_topic(Role::Ledger, &t, &needs()).is_empty());
        t.max_message_bytes = Some(1_083_000);
        assert!(check_topic(Role::Delivery, &t, &needs()).is_empty());
        assert!(
            check_broker(1, 1_048_588, &needs()).is_some_and(|m| m.contains("message.max.bytes"))
        );
        assert!(check_broker(1, 2_000_000, &needs()).is_none());
    }

    #[test]
    fn item5_min_insync_replicas_below_the_settings_or_below_2_with_3_replicas_is_named() {
        let n = needs();
        // As asked for: fine.
        assert!(check_topic(Role::Delivery, &topic(3, 2), &n).is_empty());
        // Below topics.settings.
        let p = check_topic(Role::Delivery, &topic(3, 1), &n);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].text
                .contains("below topics.settings' min.insync.replicas = 2")
        );
        assert!(
            p[0].text
                .contains("raise the topic's min.insync.replicas to 2")
        );
        // topics.settings without min.insync.replicas: still at least 2
        // with 3 replicas.
        let mut no_setting = n.clone();
        no_setting.min_insync_replicas = None;
        let p = check_topic(Role::Ledger, &topic(3, 1), &no_setting);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].text.contains("below 2 with 3 replicas"),
            "{}",
            p[0].text
        );
        // One replica (a one-broker cluster): 1 is all there can be, unless
        // topics.settings asks for more — then the replicas are short.
        assert!(check_topic(Role::Delivery, &topic(1, 1), &no_setting).is_empty());
        let p = check_topic(Role::Delivery, &topic(1, 1), &n);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].text.contains("add replicas"), "{}", p[0].text);
        // Above the replica count: every write fails, readiness too.
        let p = check_topic(Role::Delivery, &topic(1, 2), &n);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].blocking);
        assert!(p[0].text.contains("every write fails"));
    }

    #[test]
    fn item5_a_ledger_kept_shorter_than_the_dedup_window_is_named() {
        let n = needs();
        let mut t = topic(3, 2);
        t.retention_ms = Some(3_600_000);
        let p = check_topic(Role::Ledger, &t, &n);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].text.contains("retention.ms = 3600000 (1h)"),
            "{}",
            p[0].text
        );
        assert!(p[0].text.contains("at least 172800000"), "{}", p[0].text);
        // Delivery topics keep what their owners decide.
        assert!(check_topic(Role::Delivery, &t, &n).is_empty());
        // Forever, or at least the window: fine.
        for ok in [-1, 172_800_000, 345_600_000] {
            t.retention_ms = Some(ok);
            assert!(check_topic(Role::Ledger, &t, &n).is_empty(), "{ok}");
        }
        // Duplicate detection off: no window to keep.
        let mut off = n.clone();
        off.dedup_window = None;
        t.retention_ms = Some(1);
        assert!(check_topic(Role::Ledger, &t, &off).is_empty());
    }
}
