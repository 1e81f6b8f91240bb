//! A Kafka record as popbill-bridge writes it, decoded.
//!
//! Input is plain bytes and header pairs ([`RawRecord`]), so any Kafka
//! client works; with the `rdkafka` feature, `RawRecord::from(&message)`.

use jiff::Timestamp;

use crate::DocumentKey;
use crate::event::{BodyError, Event, HeaderHints};
use crate::time::PbDateTime;

/// Header with the bridge's receive time (RFC 3339, UTC, milliseconds).
pub const RECEIVED_AT: &str = "popbill-bridge-received-at";

/// Header with the reason a delivery went to the dead-letter topic.
pub const REJECTION_REASON: &str = "popbill-bridge-rejection-reason";

/// One Kafka record, as bytes: what any Kafka client gives.
///
/// ```
/// use popbill_events::{Event, RawRecord};
///
/// let body = br#"{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,
///                 "stateDT":"20251114093010","eventDT":"20251114093011","eventType":"Issue"}"#;
/// let delivery = RawRecord::new(body)
///     .with_key(b"1234567890:025111409301000001")
///     .with_header("pb-webhook-type", b"TAXINVOICE.STATE")
///     .with_header("pb-webhook-mid", b"025111409301-7c1d2e3f4a5b6c7d8e9f001")
///     .with_header("ce_id", b"025111409301-7c1d2e3f4a5b6c7d8e9f001")
///     .with_header("ce_time", b"2025-11-14T09:30:11+09:00")
///     .with_timestamp_millis(1_763_080_211_000)
///     .decode()?;
/// assert_eq!(delivery.id(), "025111409301-7c1d2e3f4a5b6c7d8e9f001");
/// assert!(matches!(delivery.event, Event::TaxInvoice(_)));
/// assert_eq!(delivery.document().map(|d| d.to_string()).as_deref(),
///            Some("1234567890:025111409301000001"));
/// # Ok::<(), popbill_events::DecodeError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct RawRecord<'a> {
    /// The record key.
    pub key: Option<&'a [u8]>,
    /// The record value: the webhook body.
    pub value: Option<&'a [u8]>,
    /// The record headers, in order (a header may have no value).
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    /// The record timestamp, in milliseconds since the Unix epoch (the
    /// bridge sets it to the receive time).
    pub timestamp_millis: Option<i64>,
}

impl<'a> RawRecord<'a> {
    /// A record with this value and nothing else.
    pub fn new(value: &'a [u8]) -> RawRecord<'a> {
        RawRecord {
            value: Some(value),
            ..RawRecord::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: &'a [u8]) -> RawRecord<'a> {
        self.key = Some(key);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'a str, value: &'a [u8]) -> RawRecord<'a> {
        self.headers.push((name, Some(value)));
        self
    }

    /// Sets the record timestamp.
    pub fn with_timestamp_millis(mut self, millis: i64) -> RawRecord<'a> {
        self.timestamp_millis = Some(millis);
        self
    }

    /// The first value of a header (name case ignored), when it is UTF-8
    /// and not blank.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8((*v)?).ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Reads the headers, key and timestamp, not the value.
    ///
    /// Fails only when the record is not a delivery: no `ce_id` (nor
    /// `pb-webhook-mid`), as on the bridge's ledger topic.
    pub fn envelope(&self) -> Result<Envelope, DecodeError> {
        let text = |name: &str| self.header(name).map(str::to_owned);
        let id = text("ce_id")
            .or_else(|| text("pb-webhook-mid"))
            .ok_or(DecodeError::NotADelivery)?;
        let time = |name: &str| self.header(name).and_then(header_instant);
        let other_headers = self
            .headers
            .iter()
            .filter(|(n, _)| !INTERPRETED.iter().any(|i| n.eq_ignore_ascii_case(i)))
            .map(|(n, v)| ((*n).to_owned(), v.map(<[u8]>::to_vec)))
            .collect();
        Ok(Envelope {
            cloud_event: CloudEvent {
                id,
                spec_version: text("ce_specversion"),
                source: text("ce_source"),
                ty: text("ce_type"),
                time: time("ce_time"),
                subject: text("ce_subject"),
            },
            webhook_type: text("pb-webhook-type"),
            mid: text("pb-webhook-mid"),
            corp_num: text("pb-webhook-corpnum"),
            event_type: text("pb-webhook-eventtype"),
            content_type: text("content-type"),
            key: self.key.map(|k| String::from_utf8_lossy(k).into_owned()),
            received_at: time(RECEIVED_AT),
            timestamp: self
                .timestamp_millis
                .and_then(|ms| Timestamp::from_millisecond(ms).ok()),
            rejection_reason: text(REJECTION_REASON),
            other_headers,
        })
    }

    /// Reads the whole record: envelope and typed event.
    ///
    /// Errors: [`DecodeError::NotADelivery`] for a record without `ce_id`;
    /// [`DecodeError::Body`] (with the envelope) for a value that is not a
    /// JSON object (the dead-letter topic). An unknown webhook type is not
    /// an error but [`Event::Unknown`].
    pub fn decode(&self) -> Result<Delivery, DecodeError> {
        let envelope = self.envelope()?;
        let hints = HeaderHints {
            event_type: self.header("pb-webhook-eventtype"),
            corp_num: self.header("pb-webhook-corpnum"),
        };
        match Event::parse(self.header("pb-webhook-type"), hints, self.value) {
            Ok(event) => Ok(Delivery { envelope, event }),
            Err(error) => Err(DecodeError::Body {
                envelope: Box::new(envelope),
                error,
            }),
        }
    }
}

/// Headers read into [`Envelope`] fields (the rest go to
/// [`Envelope::other_headers`]).
const INTERPRETED: &[&str] = &[
    "ce_id",
    "ce_specversion",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "pb-webhook-type",
    "pb-webhook-mid",
    "pb-webhook-corpnum",
    "pb-webhook-eventtype",
    "content-type",
    RECEIVED_AT,
    REJECTION_REASON,
];

/// The CloudEvents attributes of a record (binary mode, Kafka binding).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloudEvent {
    /// `ce_id`: the POPBiLL MID, or (without one) `content:<hex>` /
    /// `sha256:<hex>` derived from the delivery. The deduplication key.
    pub id: String,
    /// `ce_specversion`: `1.0`.
    pub spec_version: Option<String>,
    /// `ce_source`: the bridge's configured source.
    pub source: Option<String>,
    /// `ce_type`: `com.popbill.webhook.<webhook type>.<event type>`.
    pub ty: Option<String>,
    /// `ce_time`: the body's `eventDT` (else the receive time).
    pub time: Option<Timestamp>,
    /// `ce_subject`: the body's `itemKey`.
    pub subject: Option<String>,
}

/// Everything about a record but its value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope {
    /// The CloudEvents attributes.
    pub cloud_event: CloudEvent,
    /// `pb-webhook-type`.
    pub webhook_type: Option<String>,
    /// `pb-webhook-mid`: POPBiLL's event id (absent on some deliveries).
    pub mid: Option<String>,
    /// `pb-webhook-corpnum`.
    pub corp_num: Option<String>,
    /// `pb-webhook-eventtype` (absent for hometax crawls and KakaoTalk).
    pub event_type: Option<String>,
    /// `content-type`: the data content type.
    pub content_type: Option<String>,
    /// The record key: `corpNum:itemKey`, else the id.
    pub key: Option<String>,
    /// `popbill-bridge-received-at`: when the bridge received the request.
    pub received_at: Option<Timestamp>,
    /// The record timestamp.
    pub timestamp: Option<Timestamp>,
    /// `popbill-bridge-rejection-reason`: set on dead-letter records.
    pub rejection_reason: Option<String>,
    /// Every other header, in order: custom POPBiLL headers such as
    /// `pb-custom-tenant`.
    pub other_headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A decoded delivery record: its envelope and its event.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Delivery {
    /// Headers, key and timestamps.
    pub envelope: Envelope,
    /// The typed body.
    pub event: Event,
}

impl Delivery {
    /// The event's identity (`ce_id`): what to deduplicate on.
    pub fn id(&self) -> &str {
        &self.envelope.cloud_event.id
    }

    /// The document (`corpNum` + `itemKey`), when known.
    pub fn document(&self) -> Option<DocumentKey> {
        self.event.document()
    }

    /// `stateDT`, for the products that have one.
    pub fn state_dt(&self) -> Option<&PbDateTime> {
        self.event.state_dt()
    }

    /// When the bridge received the delivery: the record timestamp, else
    /// `popbill-bridge-received-at`, else `ce_time` (the event's own time,
    /// the closest known). [`Gate`](crate::Gate) runs its window on it.
    pub fn received(&self) -> Option<Timestamp> {
        let e = &self.envelope;
        e.timestamp.or(e.received_at).or(e.cloud_event.time)
    }
}

/// Why a record could not be decoded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No `ce_id` (nor `pb-webhook-mid`) header: not a delivery record
    /// (the bridge's ledger topic, or another producer).
    #[error("not a popbill-bridge delivery record (no ce_id header)")]
    NotADelivery,
    /// A delivery whose value is not a JSON object (a dead letter).
    #[error("delivery {}: {error}", envelope.cloud_event.id)]
    Body {
        /// What the headers say.
        envelope: Box<Envelope>,
        /// What is wrong with the value.
        error: BodyError,
    },
}

/// A header time (`ce_time`, `popbill-bridge-received-at`) in the one form
/// the three libraries read, the form the bridge writes:
/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction of 1 to 9 digits after `.`,
/// then `Z` or `±HH:MM` (hours to 23, minutes to 59; `t` and `z` in either
/// case). jiff alone would also take a space separator, `+09`/`+0900`,
/// a comma fraction, second 60 and a `[zone]` suffix, which the Java and
/// Python libraries do not: those are no time here either. An instant
/// jiff cannot hold (after 9999-12-30T22:00Z) is none in all three.
pub(crate) fn header_instant(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let digits = |from: usize, to: usize| {
        b.get(from..to)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let num = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    let fixed = digits(0, 4)
        && b.get(4) == Some(&b'-')
        && digits(5, 7)
        && b.get(7) == Some(&b'-')
        && digits(8, 10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11, 13)
        && b.get(13) == Some(&b':')
        && digits(14, 16)
        && b.get(16) == Some(&b':')
        && digits(17, 19);
    if !fixed || num(11, 13) > 23 || num(14, 16) > 59 || num(17, 19) > 59 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start || i - start > 9 {
            return None;
        }
    }
    let offset_ok = match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', _, _, b':', _, _] => {
            digits(i + 1, i + 3)
                && digits(i + 4, i + 6)
                && num(i + 1, i + 3) <= 23
                && num(i + 4, i + 6) <= 59
        }
        _ => false,
    };
    if !offset_ok {
        return None;
    }
    s.parse::<Timestamp>().ok()
}

#[cfg(test)]
mod header_instant_tests {
    use super::header_instant;

    #[test]
    fn header_times_are_read_in_the_strict_form_only() {
        for ok in [
            "2025-11-14T09:30:11+09:00",
            "2025-11-14T00:30:11.123Z",
            "2025-11-14t00:30:11.123456789z",
            "2025-11-14T09:30:11-23:59",
        ] {
            assert!(header_instant(ok).is_some(), "{ok}");
        }
        for no in [
            "2025-11-14 09:30:11+09:00",
            "2025-11-14T09:30:11+09",
            "2025-11-14T09:30:11+0900",
            "2025-11-14T00:30:11,5Z",
            "2025-11-14T00:30:60Z",
            "2025-11-14T09:30:11+09:00[Asia/Seoul]",
            "2025-11-14T09:30:11+24:00",
            "2025-11-14T00:30:11.Z",
            "2025-11-14T00:30:11.1234567890Z",
            "9999-12-31T23:59:59+09:00",
        ] {
            assert!(header_instant(no).is_none(), "{no}");
        }
    }
}
