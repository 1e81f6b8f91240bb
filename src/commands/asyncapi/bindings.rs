//! The Kafka bindings: the channel's (topic, partitions, replicas and
//! settings) and the message's (its key).

use serde_json::{Map, Value, json};

use crate::config::Config;

/// The Kafka bindings' version this document uses.
pub(super) const KAFKA_BINDING: &str = "0.5.0";

/// The Kafka channel binding: the topic and, when the bridge creates its
/// topics, their partitions, replicas and settings.
pub(super) fn channel_binding(cfg: &Config, topic: &str) -> Value {
    let mut b = json!({ "topic": topic, "bindingVersion": KAFKA_BINDING });
    if cfg.topics.create {
        b["partitions"] = json!(cfg.topics.partitions);
        b["replicas"] = json!(cfg.topics.replication_factor);
        let mut settings = Map::new();
        for (k, v) in &cfg.topics.settings {
            // The binding's schema types these; everything else is text,
            // as Kafka takes it.
            let typed = match k.as_str() {
                "cleanup.policy" => Some(json!(v.split(',').map(str::trim).collect::<Vec<_>>())),
                "retention.ms"
                | "retention.bytes"
                | "delete.retention.ms"
                | "max.message.bytes" => v.trim().parse::<i64>().ok().map(Value::from),
                _ => Some(json!(v)),
            };
            if let Some(t) = typed {
                settings.insert(k.clone(), t);
            }
        }
        if !settings.is_empty() {
            b["topicConfiguration"] = Value::Object(settings);
        }
    }
    b
}

/// The record's key.
pub(super) fn key_schema(document_key: bool) -> Value {
    if document_key {
        json!({
            "type": "string",
            "description": "`corpNum:itemKey` (the member's business registration number and POPBiLL's document id) when both are known, so one document's events share a partition and stay in order; otherwise the MID (`Pb-Webhook-MID`). No key when neither is known.",
            "examples": ["1234567890:025111409301000001", "025111413000-0f1e2d3c4b5a69788796a10"],
        })
    } else {
        json!({
            "type": "string",
            "description": "The MID (`Pb-Webhook-MID`): these bodies carry no `itemKey`. No key when the delivery had no MID.",
            "examples": ["025111413000-0f1e2d3c4b5a69788796a10"],
        })
    }
}
