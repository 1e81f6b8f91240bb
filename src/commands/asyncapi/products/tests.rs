//! The AsyncAPI payload fields and the `popbill-events` types describe the
//! same bodies: held equal field by field, both ways.

use super::*;
use crate::commands::samples;
use popbill_events::Event;
use serde_json::{Map, Value, json};

/// A value of the shape `kind` documents.
fn value_of(kind: F) -> Value {
    match kind {
        F::Text => json!("x"),
        F::CorpNum => json!("1234567890"),
        F::DateTime => json!("20250102030405"),
        F::Date => json!("20250102"),
        F::StateCode => json!(300),
        F::Int => json!(1),
        F::IntOrText => json!(1),
        F::Amount => json!(1000),
    }
}

#[test]
fn every_documented_field_is_typed_by_popbill_events_with_the_documented_shape() {
    assert!(PRODUCTS.len() >= 6, "the products were found");
    for p in PRODUCTS {
        let body: Map<String, Value> = p
            .fields
            .iter()
            .map(|(name, kind, _)| (name.to_string(), value_of(*kind)))
            .collect();
        let text = serde_json::to_vec(&body).expect("json");
        let event = Event::from_body(p.webhook_type, &text).expect("an object decodes");
        assert!(
            !matches!(event, Event::Unknown(_)),
            "{}: popbill-events has no type for it",
            p.webhook_type
        );
        let untyped: Vec<&String> = event.extra().keys().collect();
        assert!(
            untyped.is_empty(),
            "{}: documented in the AsyncAPI document but not typed (or not of the documented shape) in popbill-events: {untyped:?}",
            p.webhook_type
        );
    }
}

#[test]
fn every_field_popbill_events_types_in_a_sample_is_documented() {
    let mut checked = 0;
    for s in samples::all() {
        let Some(webhook_type) = s.header("Pb-Webhook-Type") else {
            continue;
        };
        let Some(p) = product(webhook_type) else {
            continue;
        };
        let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&s.body) else {
            continue;
        };
        let event = Event::from_body(webhook_type, s.body.as_bytes()).expect("decodes");
        for key in body.keys() {
            // `eventType` is the header's twin, described with the headers.
            if event.extra().contains_key(key) || key == "eventType" {
                continue;
            }
            checked += 1;
            assert!(
                p.fields.iter().any(|(name, _, _)| name == key),
                "{} ({}): popbill-events types `{key}`, the AsyncAPI payload does not document it",
                s.name,
                webhook_type
            );
        }
    }
    assert!(
        checked > 20,
        "typed fields were found in the samples: {checked}"
    );
}
