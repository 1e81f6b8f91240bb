//! Payload schemas: a JSON schema per known webhook type, built from the
//! products table, and the one for bodies of unknown types.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::products::{F, PRODUCTS, Product};

fn field_schema(kind: F, description: &str) -> Value {
    let (mut s, example): (Value, Value) = match kind {
        F::Text => (json!({ "type": ["string", "null"] }), Value::Null),
        F::CorpNum => (
            json!({ "type": ["string", "null"], "pattern": "^([0-9]{10})?$" }),
            json!("1234567890"),
        ),
        F::DateTime => (
            json!({ "type": ["string", "null"], "pattern": "^([0-9]{14})?$" }),
            json!("20251114093010"),
        ),
        F::Date => (
            json!({ "type": ["string", "null"], "pattern": "^([0-9]{8})?$" }),
            json!("20251114"),
        ),
        F::StateCode => (
            json!({ "type": ["integer", "string", "null"], "pattern": "^[0-9]*$" }),
            json!(300),
        ),
        F::Int => (json!({ "type": ["integer", "null"] }), Value::Null),
        F::IntOrText => (
            json!({ "type": ["integer", "string", "null"] }),
            Value::Null,
        ),
        F::Amount => (
            json!({ "type": ["integer", "string", "null"], "pattern": "^ *-?[0-9][0-9,]* *$|^$" }),
            json!("1100000"),
        ),
    };
    let note = match kind {
        F::DateTime => " `yyyyMMddHHmmss`, Korean time (UTC+9); empty or null when not set.",
        F::Date => " `yyyyMMdd`, Korean time; empty or null when not set.",
        F::StateCode => " A number, or its digits as a string.",
        F::Amount => " A number, or its digits as a string.",
        _ => "",
    };
    s["description"] = json!(format!("{description}{note}"));
    if !example.is_null() {
        s["examples"] = json!([example]);
    }
    s
}

pub(super) fn payload_schema(p: &Product) -> Value {
    let mut props = Map::new();
    props.insert(
        "eventType".into(),
        json!({
            "type": "string",
            "description": format!(
                "The event type (the `Pb-Webhook-EventType` header wins when both are sent). Known values: {}; others may come.",
                p.events.iter().map(|(e, _)| format!("`{e}`")).collect::<Vec<_>>().join(", ")
            ),
            "examples": p.events.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        }),
    );
    for (name, kind, description) in p.fields {
        props.insert((*name).into(), field_schema(*kind, description));
    }
    json!({
        "type": "object",
        "title": p.title,
        "description": format!("The body of a `{}` delivery, exactly as POPBiLL sent it. More fields may come; optional fields may be absent, empty or null.", p.webhook_type),
        "properties": props,
        "additionalProperties": true,
    })
}

pub(super) fn unknown_body_schema() -> Value {
    json!({
        "type": "object",
        "title": "Webhook body",
        "description": "A webhook body as POPBiLL sent it: a JSON object whose fields depend on the webhook type (see the other schemas for the known ones).",
        "properties": {
            "eventType": { "type": ["string", "null"], "description": "The event type, when in the body." },
            "corpNum": field_schema(F::CorpNum, "The member's business registration number, when in the body."),
            "itemKey": field_schema(F::Text, "POPBiLL's document id, when in the body."),
            "eventDT": field_schema(F::DateTime, "When the event happened, when in the body."),
        },
        "additionalProperties": true,
    })
}

/// The payload schema names, by webhook type, for the known products.
pub fn payload_schema_names() -> BTreeMap<&'static str, &'static str> {
    PRODUCTS
        .iter()
        .map(|p| (p.webhook_type, p.schema))
        .collect()
}
