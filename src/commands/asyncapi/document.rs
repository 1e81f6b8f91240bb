//! The AsyncAPI document itself: one channel and one publish operation per
//! topic, in route order, with the messages and payload schemas of the
//! routes that write to it.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::bindings::channel_binding;
use super::description::{info, publish_summary};
use super::kind::Kind;
use super::message::message;
use crate::commands::samples;
use crate::config::Config;
use crate::route::{Route, RouteKind, Router};

/// The AsyncAPI document for `cfg`.
pub fn document(cfg: &Config) -> Result<Value, String> {
    let router = Router::new(&cfg.routes, &cfg.dead_letter).map_err(|e| e.join("; "))?;
    let samples = samples::all();
    let ce = &cfg.cloudevents;

    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    let mut schemas = Map::new();
    let mut message_ids = BTreeSet::new();
    // Topics in route order; several routes may share one topic.
    let mut by_topic: Vec<(&str, Vec<&Route>)> = Vec::new();
    for r in router.routes() {
        match by_topic.iter_mut().find(|(t, _)| *t == &*r.topic) {
            Some((_, rs)) => rs.push(r),
            None => by_topic.push((&r.topic, vec![r])),
        }
    }
    let dead_letter_topic = router.dead_letter().map(|r| r.topic.clone());
    let fallback_topic = router.fallback().topic.clone();
    let publish_summary = publish_summary(cfg.kafka.transactions.enabled);

    for (topic, routes) in by_topic {
        let mut channel_messages = Map::new();
        let mut summaries = Vec::new();
        for r in routes {
            let kind = if r.kind == RouteKind::DeadLetter {
                Kind::DeadLetter
            } else if r.kind == RouteKind::Fallback {
                Kind::Fallback
            } else {
                let (t, e) = r.label.split_once(':').unwrap_or((&r.label, ""));
                Kind::Routed {
                    webhook_type: t,
                    event_type: e,
                }
            };
            let id = unique_id(&mut message_ids, &kind.message_id());
            let (message, schema) = message(&kind, &r.topic, ce, &samples);
            if let Some((name, s)) = schema {
                schemas.entry(name).or_insert(s);
            }
            summaries.push(kind.summary());
            messages.insert(id.clone(), message);
            channel_messages.insert(
                id.clone(),
                json!({ "$ref": format!("#/components/messages/{id}") }),
            );
        }
        let channel_id = topic.to_string();
        let description = if *topic == *fallback_topic {
            "Deliveries whose webhook and event type match no route: unknown webhook types \
             (SMS, fax, ...), unknown event types of known webhooks, deliveries without an event \
             type. Created on first use."
                .to_string()
        } else if dead_letter_topic.as_deref() == Some(topic) {
            "Malformed deliveries from verified senders (valid credentials or an allowed \
             source), kept as they came with the reason in `popbill-bridge-rejection-reason` and \
             answered OK, so a permanently broken body does not loop through POPBiLL's retries. \
             Created on first use."
                .to_string()
        } else {
            summaries.join("\n\n")
        };
        let op_messages: Vec<Value> = channel_messages
            .keys()
            .map(|m| json!({ "$ref": format!("#/channels/{channel_id}/messages/{m}") }))
            .collect();
        channels.insert(
            channel_id.clone(),
            json!({
                "address": topic,
                "title": topic,
                "description": description,
                "messages": channel_messages,
                "bindings": { "kafka": channel_binding(cfg, topic) },
            }),
        );
        operations.insert(
            format!("publish.{channel_id}"),
            json!({
                "action": "send",
                "title": format!("Publish to {topic}"),
                "summary": publish_summary,
                "channel": { "$ref": format!("#/channels/{channel_id}") },
                "messages": op_messages,
            }),
        );
    }

    Ok(json!({
        "asyncapi": "3.0.0",
        "id": "urn:com:popbill:bridge",
        "info": {
            "title": "popbill-bridge topics",
            "version": env!("CARGO_PKG_VERSION"),
            "description": info(cfg.kafka.transactions.enabled),
            "license": { "name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0" },
            "externalDocs": {
                "description": "The Kafka record (key, headers, CloudEvents attributes)",
                "url": "https://github.com/cloudevents/spec/blob/main/cloudevents/bindings/kafka-protocol-binding.md",
            },
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
        },
    }))
}

fn unique_id(seen: &mut BTreeSet<String>, base: &str) -> String {
    let mut id = base.to_string();
    let mut n = 2;
    while !seen.insert(id.clone()) {
        id = format!("{base}_{n}");
        n += 1;
    }
    id
}

#[cfg(test)]
mod tests;
