//! The schema of a message's Kafka headers: the `pb-webhook-*` ones POPBiLL
//! sent, the bridge's `popbill-bridge-*` ones and the CloudEvents `ce_*`
//! attributes, narrowed by what the message is about.

use serde_json::{Map, Value, json};

use super::kind::Kind;
use crate::kafka::record;
use crate::kafka::record::CloudEventsConfig;
use crate::labels::RejectReason;
use crate::webhook::DEAD_LETTER_REASON;

/// Reject reasons that send a delivery to the dead-letter topic, as the
/// bridge decides them ([`RejectReason::dead_letters`]).
fn dead_letter_reasons() -> Vec<&'static str> {
    RejectReason::ALL
        .iter()
        .filter(|r| r.dead_letters())
        .map(|r| r.as_str())
        .collect()
}

/// A text header.
fn text(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

pub(super) fn headers_schema(kind: &Kind<'_>, ce: &CloudEventsConfig) -> Value {
    let mut p = Map::new();
    let mut webhook_type = text(
        "`Pb-Webhook-Type` as POPBiLL sent it: the product and stream, e.g. `TAXINVOICE.STATE`.",
    );
    let mut event_type = text(
        "`Pb-Webhook-EventType` as POPBiLL sent it (tax invoices, statements and cash receipts only; the body's `eventType` otherwise). Wins over the body's `eventType` for routing.",
    );
    let prefix = regex_escape(&ce.type_prefix);
    let mut ce_type = json!({
        "type": "string",
        "description": format!("`{}.<webhook type>.<event type>` (`unknown` without an event type); characters outside `[A-Za-z0-9._:-]` become `_`.", ce.type_prefix),
        "pattern": format!("^{prefix}\\."),
    });
    match kind {
        Kind::Routed {
            webhook_type: t,
            event_type: e,
        } => {
            webhook_type["const"] = json!(t);
            event_type["const"] = json!(e);
            ce_type = json!({
                "type": "string",
                "description": "`<cloudevents.type_prefix>.<webhook type>.<event type>`.",
                "const": record::ce_type_of(ce, t, e),
            });
        }
        Kind::Fallback => {}
        Kind::DeadLetter => {
            webhook_type["description"] =
                json!("`Pb-Webhook-Type` as POPBiLL sent it, when it did.");
        }
    }
    p.insert("pb-webhook-type".into(), webhook_type);
    p.insert(
        "pb-webhook-mid".into(),
        text("`Pb-Webhook-MID`: POPBiLL's identifier of the event. Opaque; POPBiLL's retries carry the same MID."),
    );
    p.insert(
        "pb-webhook-corpnum".into(),
        text("`Pb-Webhook-Corpnum`: the member's business registration number, 10 digits."),
    );
    p.insert("pb-webhook-eventtype".into(), event_type);
    p.insert(
        "content-type".into(),
        json!({ "type": "string", "description": "The request's content type: the CloudEvents data content type.", "examples": ["application/json"] }),
    );
    p.insert(
        record::RECEIVED_AT.into(),
        json!({ "type": "string", "format": "date-time", "description": "When the bridge received the request: RFC 3339, UTC, milliseconds. Also the record's timestamp." }),
    );
    if matches!(kind, Kind::Routed { .. }) {
        p.insert(
            record::REDRIVEN_FROM.into(),
            json!({ "type": "string", "pattern": "^.+/[0-9]+/[0-9]+$", "description": "Only on records `popbill-bridge redrive` wrote: where the delivery was before, `<topic>/<partition>/<offset>`." }),
        );
    }
    if matches!(kind, Kind::DeadLetter) {
        p.insert(
            DEAD_LETTER_REASON.into(),
            json!({ "type": "string", "description": "Why the delivery could not be routed.", "enum": dead_letter_reasons() }),
        );
    }
    p.insert(
        "ce_specversion".into(),
        json!({ "type": "string", "const": "1.0", "description": "CloudEvents specification version." }),
    );
    p.insert(
        "ce_id".into(),
        json!({ "type": "string", "description": "The event's identity: the MID; without one `content:<32 hex>` (a digest of webhook type, corpNum, itemKey, event type, stateCode and stateDT) or `sha256:<32 hex>` (a digest of the body). Copies of one event carry the same id: deduplicate by it." }),
    );
    p.insert(
        "ce_source".into(),
        json!({ "type": "string", "const": ce.source, "description": "`cloudevents.source`." }),
    );
    p.insert("ce_type".into(), ce_type);
    p.insert(
        "ce_time".into(),
        json!({ "type": "string", "format": "date-time", "description": "The body's `eventDT` as RFC 3339 in Korean time (`2025-11-14T09:30:11+09:00`); the receive time when absent or not a `yyyyMMddHHmmss` date-time." }),
    );
    p.insert(
        "ce_subject".into(),
        text("The body's `itemKey` (POPBiLL's document id), when present."),
    );
    let mut required = vec![
        record::RECEIVED_AT,
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
    ];
    match kind {
        Kind::DeadLetter => required.push(DEAD_LETTER_REASON),
        _ => required.insert(0, "pb-webhook-type"),
    }
    json!({
        "type": "object",
        "description": "Kafka record headers (values are UTF-8 text). Besides these, every other header POPBiLL sent travels under its lower-case name (custom headers a partner asked for, such as `pb-custom-tenant`); credentials and HTTP-hop headers never do.",
        "properties": p,
        "required": required,
        "additionalProperties": { "type": "string" },
    })
}

/// Escapes ECMAScript's syntax characters only: validators compile
/// patterns with the `u` flag, where any other escape (`\-`) is an error.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\^$.*+?()[]{}|/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
