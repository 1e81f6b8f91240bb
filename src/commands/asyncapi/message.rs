//! One route's message: its name, headers, payload, key binding and
//! examples, and the payload schema it refers to.

use serde_json::{Value, json};

use super::bindings::{KAFKA_BINDING, key_schema};
use super::examples::example;
use super::headers::headers_schema;
use super::kind::Kind;
use super::payload::{payload_schema, unknown_body_schema};
use super::products::product;
use crate::commands::samples::Sample;
use crate::kafka::record::CloudEventsConfig;

/// `TAXINVOICE.STATE:CLOSEDOWN` → `TaxinvoiceStateClosedown`.
fn camel(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lower = p.to_ascii_lowercase();
            let mut cs = lower.chars();
            match cs.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The message for one route, and the payload schema it refers to (name
/// and schema) when it has one of its own.
pub(super) fn message(
    kind: &Kind<'_>,
    topic: &str,
    ce: &CloudEventsConfig,
    samples: &[Sample],
) -> (Value, Option<(String, Value)>) {
    let headers = headers_schema(kind, ce);
    let (name, title, summary, content_type, payload, schema, key) = match kind {
        Kind::Routed {
            webhook_type,
            event_type,
        } => {
            let p = product(webhook_type);
            let (schema_name, schema) = match p {
                Some(p) => (p.schema.to_string(), payload_schema(p)),
                None => ("UnknownWebhookBody".to_string(), unknown_body_schema()),
            };
            (
                camel(&format!("{webhook_type}:{event_type}")),
                format!("{webhook_type}:{event_type}"),
                kind.summary(),
                "application/json",
                json!({ "$ref": format!("#/components/schemas/{schema_name}") }),
                Some((schema_name, schema)),
                key_schema(p.is_some_and(|p| p.has_item_key) || p.is_none()),
            )
        }
        Kind::Fallback => (
            "Unrouted".into(),
            "Unrouted delivery".into(),
            "A delivery whose webhook and event type match no route.".into(),
            "application/json",
            json!({ "$ref": "#/components/schemas/UnknownWebhookBody" }),
            Some(("UnknownWebhookBody".to_string(), unknown_body_schema())),
            key_schema(true),
        ),
        Kind::DeadLetter => (
            "DeadLetter".into(),
            "Dead-lettered delivery".into(),
            "A malformed delivery from a verified sender, kept as it came.".into(),
            "application/octet-stream",
            json!({
                "type": "string",
                "format": "binary",
                "description": "The request body exactly as received: not JSON, not a JSON object, or not UTF-8. Its content type is the `content-type` header, if the sender gave one.",
            }),
            None,
            key_schema(false),
        ),
    };
    let mut m = json!({
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": content_type,
        "headers": headers,
        "payload": payload,
        "correlationId": {
            "description": "The event's identity: the MID, or a digest without one. Deduplicate by it.",
            "location": "$message.header#/ce_id",
        },
        "bindings": {
            "kafka": { "key": key, "bindingVersion": KAFKA_BINDING },
        },
    });
    if let Kind::Routed {
        webhook_type,
        event_type,
    } = kind
    {
        let examples: Vec<Value> = samples
            .iter()
            .filter(|s| {
                s.webhook_type() == *webhook_type && s.event_type().as_deref() == Some(*event_type)
            })
            .filter_map(|s| example(s, topic, ce))
            .collect();
        if !examples.is_empty() {
            m["examples"] = Value::Array(examples);
        }
    }
    (m, schema)
}

#[cfg(test)]
mod tests;
