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
    pub(crate) type_prefix: String,
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
pub(crate) const REDRIVEN_FROM: &str = "popbill-bridge-redriven-from";

/// Longest `itemKey` carried as `ce_subject`. POPBiLL's are 18 characters;
/// a longer one (it comes from the body) is left out rather than copied,
/// so a record's size stays bounded by what `publish::max_record_bytes`
/// reckons with.
pub(crate) const MAX_SUBJECT_BYTES: usize = 256;

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
pub(crate) fn is_bridge_header(name: &str) -> bool {
    name.starts_with("ce_") || name.starts_with("ce-") || name.starts_with("popbill-bridge-")
}

/// Header carrying why a dead-lettered delivery was refused.
pub const DEAD_LETTER_REASON: &str = "popbill-bridge-rejection-reason";

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
pub(crate) fn ce_type_of(ce: &CloudEventsConfig, webhook_type: &str, event: &str) -> String {
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
mod tests;
