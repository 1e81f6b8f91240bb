//! `[topics]`: how the bridge creates the topics it writes to
//! (partitions, replication, settings), checked once at start; and the
//! spec of a topic to create.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Create missing topics through the admin API. When false, a missing
    /// topic fails readiness and deliveries routed to it get 503.
    pub create: bool,
    /// Partitions of topics the bridge creates.
    pub partitions: i32,
    /// Replication factor of topics the bridge creates.
    pub replication_factor: i32,
    /// Topic-level settings for topics the bridge creates
    /// (`min.insync.replicas`, `retention.ms`, ...). Laid over the defaults
    /// key by key: setting `retention.ms` must not drop
    /// `min.insync.replicas=2`, or `acks=all` would quietly mean one replica.
    /// A default is changed by giving its key another value.
    #[serde(deserialize_with = "settings_over_defaults")]
    pub settings: BTreeMap<String, String>,
}

/// Topic settings every created topic gets unless configured otherwise.
fn default_topic_settings() -> BTreeMap<String, String> {
    BTreeMap::from([("min.insync.replicas".to_string(), "2".to_string())])
}

impl TopicsConfig {
    /// Every problem of this section, each saying what to change.
    pub fn check(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if self.partitions < 1 && self.partitions != -1 {
            errs.push(format!(
                "topics.partitions {} must be at least 1 (or -1 for the broker default)",
                self.partitions
            ));
        }
        if self.replication_factor < 1 && self.replication_factor != -1 {
            errs.push(format!(
                "topics.replication_factor {} must be at least 1 (or -1 for the broker default)",
                self.replication_factor
            ));
        }
        errs
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            create: true,
            partitions: 6,
            replication_factor: 3,
            settings: default_topic_settings(),
        }
    }
}

fn settings_over_defaults<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let mut settings = default_topic_settings();
    settings.extend(crate::deserialize::property_map(d)?);
    Ok(settings)
}

/// A topic to create: name, partitions and topic-level settings (the
/// replication factor is `topics.replication_factor` for all).
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub settings: BTreeMap<String, String>,
}
