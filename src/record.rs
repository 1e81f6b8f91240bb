//! The Kafka record headers of a delivery.
//!
//! What travels: every header POPBiLL sent (its `Pb-Webhook-*` headers and
//! any custom ones a partner asked for), the time the bridge received it, and
//! the CloudEvents binary-mode attributes (`ce_*`, Kafka protocol binding) so
//! CloudEvents-aware consumers read the record natively. What never travels:
//! credentials, and transport headers that describe the HTTP hop rather than
//! the event. A sender cannot forge our own attributes: incoming headers that
//! collide with them are dropped.

use std::time::SystemTime;

use hyper::HeaderMap;
use rdkafka::message::{Header, OwnedHeaders};

use crate::config::CloudEventsConfig;
use crate::delivery::Delivery;

/// Header with the bridge's receive time (RFC 3339, UTC, milliseconds).
pub const RECEIVED_AT: &str = "popbill-bridge-received-at";

/// Request headers that are never copied to Kafka.
const NOT_FORWARDED: &[&str] = &[
    // Credentials.
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    // The HTTP hop, not the event.
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "accept-encoding",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-real-ip",
];

fn forwarded(name: &str) -> bool {
    // hyper gives header names in lower case.
    !(NOT_FORWARDED.contains(&name)
        || name.starts_with("ce_")
        || name.starts_with("ce-")
        || name.starts_with("popbill-bridge-"))
}

/// Builds the record headers. `id` is the delivery's identity (the MID,
/// or a digest without one); `received_at` is also the record timestamp.
pub fn headers(
    request: &HeaderMap,
    delivery: &Delivery<'_>,
    id: &str,
    ce: &CloudEventsConfig,
    received_at: SystemTime,
) -> OwnedHeaders {
    let received = humantime::format_rfc3339_millis(received_at).to_string();
    let ce_type = ce_type(ce, delivery);
    let ce_time = delivery
        .event_dt
        .as_deref()
        .and_then(korean_datetime_to_rfc3339)
        .unwrap_or_else(|| received.clone());

    let mut h = OwnedHeaders::new_with_capacity(request.len() + 7);
    for (name, value) in request {
        let name = name.as_str();
        if forwarded(name) {
            h = h.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
    }
    let ours: [(&str, &str); 5] = [
        (RECEIVED_AT, &received),
        ("ce_specversion", "1.0"),
        ("ce_id", id),
        ("ce_source", &ce.source),
        ("ce_type", &ce_type),
    ];
    for (key, value) in ours {
        h = h.insert(Header {
            key,
            value: Some(value),
        });
    }
    h = h.insert(Header {
        key: "ce_time",
        value: Some(&ce_time),
    });
    if let Some(item) = delivery.item_key.as_deref() {
        h = h.insert(Header {
            key: "ce_subject",
            value: Some(item),
        });
    }
    h
}

/// `<prefix>.<webhook type>.<event type>`, with anything outside
/// `[A-Za-z0-9._:-]` replaced: the event type may come from the body, and a
/// consumer may route on this attribute.
fn ce_type(ce: &CloudEventsConfig, d: &Delivery<'_>) -> String {
    let event = d.event_type.as_deref().unwrap_or("unknown");
    let mut out =
        String::with_capacity(ce.type_prefix.len() + d.webhook_type.len() + event.len() + 2);
    out.push_str(&ce.type_prefix);
    for part in [d.webhook_type, event] {
        out.push('.');
        out.extend(part.chars().take(100).map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '_'
            }
        }));
    }
    out
}

/// `yyyyMMddHHmmss` in Korean time (UTC+9, no daylight saving) to
/// RFC 3339. Anything else gives `None` and the receive time is used.
pub fn korean_datetime_to_rfc3339(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let (mo, d, h, mi, se) = (n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}+09:00",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12],
        &s[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderName, HeaderValue};
    use rdkafka::message::Headers;

    #[test]
    fn event_time_is_converted_from_korean_time() {
        assert_eq!(
            korean_datetime_to_rfc3339("20251114093011").as_deref(),
            Some("2025-11-14T09:30:11+09:00")
        );
        for bad in [
            "20251114",
            "2025111409301x",
            "20251314093011",
            "20251114253011",
            "",
        ] {
            assert_eq!(korean_datetime_to_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_carry_popbill_headers_and_cloudevents_but_no_credentials() {
        let mut req = HeaderMap::new();
        for (k, v) in [
            ("content-type", "application/json"),
            ("pb-webhook-type", "TAXINVOICE.STATE"),
            ("pb-webhook-mid", "mid-1"),
            ("pb-webhook-eventtype", "Issue"),
            ("pb-custom-tenant", "acme"),
            ("authorization", "Basic cG9wYmlsbDpzM2NyZXQ="),
            ("x-api-key", "example-api-key"),
            ("host", "bridge"),
            ("ce_id", "forged"),
            ("popbill-bridge-received-at", "forged"),
        ] {
            req.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let body = br#"{"itemKey":"k1","eventDT":"20251114093011"}"#;
        let d = Delivery::parse(&req, body).expect("valid");
        let h = headers(
            &req,
            &d,
            "mid-1",
            &CloudEventsConfig::default(),
            SystemTime::UNIX_EPOCH,
        );
        let got: Vec<(String, String)> = h
            .iter()
            .map(|h| {
                (
                    h.key.to_string(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect();
        let get = |k: &str| -> Vec<&str> {
            got.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("pb-webhook-mid"), ["mid-1"]);
        assert_eq!(get("pb-custom-tenant"), ["acme"]);
        assert_eq!(get("content-type"), ["application/json"]);
        assert_eq!(get("ce_id"), ["mid-1"]);
        assert_eq!(get("ce_specversion"), ["1.0"]);
        assert_eq!(
            get("ce_type"),
            ["com.popbill.webhook.TAXINVOICE.STATE.Issue"]
        );
        assert_eq!(get("ce_time"), ["2025-11-14T09:30:11+09:00"]);
        assert_eq!(get("ce_subject"), ["k1"]);
        assert_eq!(get(RECEIVED_AT), ["1970-01-01T00:00:00.000Z"]);
        for (name, value) in &got {
            assert!(
                !name.eq_ignore_ascii_case("authorization")
                    && !name.eq_ignore_ascii_case("x-api-key")
            );
            assert!(!value.contains("cG9wYmlsbDpzM2NyZXQ") && !value.contains("example-api-key"));
            assert_ne!(value, "forged");
            assert_ne!(name, "host");
        }
    }

    #[test]
    fn ce_type_never_carries_odd_characters() {
        let mut req = HeaderMap::new();
        req.insert(
            HeaderName::from_static("pb-webhook-type"),
            HeaderValue::from_static("T"),
        );
        let d =
            Delivery::parse(&req, br#"{"eventType":"../../__consumer offsets\n"}"#).expect("valid");
        let t = ce_type(&CloudEventsConfig::default(), &d);
        assert_eq!(t, "com.popbill.webhook.T..._..___consumer_offsets_");
    }
}
