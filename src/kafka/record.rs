//! The Kafka record headers of a delivery.
//!
//! What travels: every header POPBiLL sent (its `Pb-Webhook-*` headers and
//! any custom ones a partner asked for), the time the bridge received it, and
//! the CloudEvents binary-mode attributes (`ce_*`, Kafka protocol binding) so
//! CloudEvents-aware consumers read the record natively. What never travels:
//! credentials, and transport headers that describe the HTTP hop rather than
//! the event. A sender cannot forge our own attributes: incoming headers that
//! collide with them are dropped.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::SystemTime;

use hyper::HeaderMap;
use rdkafka::message::{Header, OwnedHeaders};

use crate::delivery::Delivery;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudEventsConfig {
    /// `ce_source` attribute of every record.
    pub source: String,
    /// Prefix of the `ce_type` attribute; the webhook and event types follow.
    pub type_prefix: String,
}

impl Default for CloudEventsConfig {
    fn default() -> Self {
        Self {
            source: "https://www.popbill.com".into(),
            type_prefix: "com.popbill.webhook".into(),
        }
    }
}

/// Header with the bridge's receive time (RFC 3339, UTC, milliseconds).
pub const RECEIVED_AT: &str = "popbill-bridge-received-at";

/// On a record `popbill-bridge redrive` wrote: where the delivery was
/// before, `<topic>/<partition>/<offset>`.
pub const REDRIVEN_FROM: &str = "popbill-bridge-redriven-from";

/// Longest `itemKey` carried as `ce_subject`. POPBiLL's are 18 characters;
/// a longer one (it comes from the body) is left out rather than copied,
/// so a record's size stays bounded by what `publish::max_record_bytes`
/// reckons with.
pub const MAX_SUBJECT_BYTES: usize = 256;

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
    !(NOT_FORWARDED.contains(&name) || is_bridge_header(name))
}

/// A header name that belongs to the bridge (CloudEvents attributes, its
/// own `popbill-bridge-*`): never taken from a request, and not part of
/// the request a record carries.
pub fn is_bridge_header(name: &str) -> bool {
    name.starts_with("ce_") || name.starts_with("ce-") || name.starts_with("popbill-bridge-")
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
    // The times are written into buffers on the stack: no allocation, no
    // formatting machinery beyond humantime's one write.
    let mut received_buf = TextBuf::<32>::new();
    let received = match write!(
        received_buf,
        "{}",
        humantime::format_rfc3339_millis(received_at)
    ) {
        Ok(()) => received_buf.as_str(),
        // Past the year 9999: humantime refuses (and to_string panics, as
        // it always did).
        Err(_) => &humantime::format_rfc3339_millis(received_at).to_string(),
    };
    let ce_type = ce_type(ce, delivery);
    let mut time_buf = [0u8; KOREAN_RFC3339_LEN];
    let ce_time = delivery
        .event_dt
        .as_deref()
        .and_then(|dt| korean_datetime_into(dt, &mut time_buf))
        .unwrap_or(received);

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
    let ours: [(&str, &str); 6] = [
        (RECEIVED_AT, received),
        ("ce_specversion", "1.0"),
        ("ce_id", id),
        ("ce_source", &ce.source),
        ("ce_type", &ce_type),
        ("ce_time", ce_time),
    ];
    for (key, value) in ours {
        h = h.insert(Header {
            key,
            value: Some(value),
        });
    }
    if let Some(item) = delivery
        .item_key
        .as_deref()
        .filter(|i| i.len() <= MAX_SUBJECT_BYTES)
    {
        h = h.insert(Header {
            key: "ce_subject",
            value: Some(item),
        });
    }
    h
}

/// A little text written on the stack.
struct TextBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> TextBuf<N> {
    fn new() -> Self {
        TextBuf {
            buf: [0; N],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Write for TextBuf<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn ce_type(ce: &CloudEventsConfig, d: &Delivery<'_>) -> String {
    ce_type_of(
        ce,
        d.webhook_type,
        d.event_type.as_deref().unwrap_or("unknown"),
    )
}

/// `<prefix>.<webhook type>.<event type>`, with anything outside
/// `[A-Za-z0-9._:-]` replaced: the event type may come from the body, and a
/// consumer may route on this attribute. The AsyncAPI contract states the
/// same value from the routing table.
pub fn ce_type_of(ce: &CloudEventsConfig, webhook_type: &str, event: &str) -> String {
    let mut out =
        String::with_capacity(ce.type_prefix.len() + webhook_type.len() + event.len() + 2);
    out.push_str(&ce.type_prefix);
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    for part in [webhook_type, event] {
        out.push('.');
        // The usual case, a short part of allowed ASCII, as it is.
        if part.len() <= 100 && part.bytes().all(|b| allowed(b as char)) {
            out.push_str(part);
            continue;
        }
        out.extend(
            part.chars()
                .take(100)
                .map(|c| if allowed(c) { c } else { '_' }),
        );
    }
    out
}

/// Length of `yyyy-MM-ddTHH:mm:ss+09:00`.
const KOREAN_RFC3339_LEN: usize = 25;

/// `yyyyMMddHHmmss` in Korean time (UTC+9, no daylight saving) to
/// RFC 3339. Anything else gives `None` and the receive time is used:
/// a date that never existed (Feb 30, Feb 29 of a common year, month 13,
/// hour 24) must not reach consumers as if it had, so the fields are checked
/// by a calendar library, not by ranges.
pub fn korean_datetime_to_rfc3339(s: &str) -> Option<String> {
    let mut buf = [0u8; KOREAN_RFC3339_LEN];
    korean_datetime_into(s, &mut buf).map(str::to_owned)
}

/// [`korean_datetime_to_rfc3339`], written into `buf`.
fn korean_datetime_into<'b>(s: &str, buf: &'b mut [u8; KOREAN_RFC3339_LEN]) -> Option<&'b str> {
    let b = s.as_bytes();
    if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // All ASCII digits: each field is its digits' value.
    let n = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'))
    };
    let month = time::Month::try_from(n(4..6) as u8).ok()?;
    // Years 0000-9999 are all within the calendar library's range.
    time::Date::from_calendar_date(n(0..4) as i32, month, n(6..8) as u8).ok()?;
    time::Time::from_hms(n(8..10) as u8, n(10..12) as u8, n(12..14) as u8).ok()?;
    // Valid: the fields as they came, in RFC 3339's places.
    *buf = *b"0000-00-00T00:00:00+09:00";
    for (from, to) in [
        (0..4, 0),
        (4..6, 5),
        (6..8, 8),
        (8..10, 11),
        (10..12, 14),
        (12..14, 17),
    ] {
        buf[to..to + from.len()].copy_from_slice(&b[from]);
    }
    std::str::from_utf8(&buf[..]).ok()
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
    fn item11_impossible_event_dates_fall_back_to_the_receive_time() {
        // Real calendar dates are converted, leap days included.
        for (ok, want) in [
            ("20240229120000", "2024-02-29T12:00:00+09:00"),
            ("20000229000000", "2000-02-29T00:00:00+09:00"),
            ("20251231235959", "2025-12-31T23:59:59+09:00"),
        ] {
            assert_eq!(
                korean_datetime_to_rfc3339(ok).as_deref(),
                Some(want),
                "{ok}"
            );
        }
        // Dates that never existed are not written as if they had.
        for bad in [
            "20250229120000", // Feb 29 in a non-leap year
            "19000229120000", // 1900 is not a leap year (century rule)
            "20250230120000", // Feb 30
            "20250231120000", // Feb 31
            "20250431120000", // Apr 31
            "20251301120000", // month 13
            "20250001120000", // month 0
            "20250100120000", // day 0
            "20250101240000", // hour 24
            "20250101126000", // minute 60
            "20250101120060", // second 60
        ] {
            assert_eq!(korean_datetime_to_rfc3339(bad), None, "{bad}");
        }
        // In the record, ce_time is then the receive time.
        let mut req = HeaderMap::new();
        req.insert(
            HeaderName::from_static("pb-webhook-type"),
            HeaderValue::from_static("TAXINVOICE.STATE"),
        );
        let body = br#"{"eventDT":"20250231120000"}"#;
        let d = Delivery::parse(&req, body).expect("valid");
        let h = headers(
            &req,
            &d,
            "mid-1",
            &CloudEventsConfig::default(),
            SystemTime::UNIX_EPOCH,
        );
        let ce_time = h
            .iter()
            .find(|h| h.key == "ce_time")
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned());
        assert_eq!(ce_time.as_deref(), Some("1970-01-01T00:00:00.000Z"));
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
    fn the_receive_time_is_humantimes_rfc3339_with_milliseconds() {
        let mut req = HeaderMap::new();
        req.insert(
            HeaderName::from_static("pb-webhook-type"),
            HeaderValue::from_static("T"),
        );
        let d = Delivery::parse(&req, br#"{"eventDT":"x"}"#).expect("valid");
        for ms in [
            0u64,
            1,
            999,
            1_763_080_211_123,
            951_782_400_000,
            253_402_300_799_999,
        ] {
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            let h = headers(&req, &d, "m", &CloudEventsConfig::default(), at);
            let want = humantime::format_rfc3339_millis(at).to_string();
            for name in [RECEIVED_AT, "ce_time"] {
                let got = h
                    .iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                assert_eq!(got.as_deref(), Some(want.as_str()), "{name} at {ms} ms");
            }
        }
    }

    #[test]
    fn a_long_type_is_cut_to_100_characters() {
        let mut req = HeaderMap::new();
        req.insert(
            HeaderName::from_static("pb-webhook-type"),
            HeaderValue::from_static("T"),
        );
        let body = format!(r#"{{"eventType":"{}"}}"#, "E".repeat(150));
        let d = Delivery::parse(&req, body.as_bytes()).expect("valid");
        let t = ce_type(&CloudEventsConfig::default(), &d);
        assert_eq!(t, format!("com.popbill.webhook.T.{}", "E".repeat(100)));
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
