//! Delivery: one POPBiLL webhook request, parsed just enough to route it,
//! key it and count it.
//!
//! The body is never re-serialised: it reaches Kafka as the bytes POPBiLL
//! sent. We read six fields from it (`eventType`, `corpNum`, `itemKey`,
//! `eventDT`, `stateCode`, `stateDT`; see [`body`]) with a visitor that borrows from the body and skips everything
//! else, so unknown fields, null values and numbers-for-strings do no harm.
//! Unknown webhook and event types are valid deliveries.

use std::borrow::Cow;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

use crate::error::BridgeError;

mod body;

#[cfg(test)]
use body::{MAX_DEPTH, flat_fields, json_fields};
use body::{parse_body, trim};

pub(crate) static PB_WEBHOOK_MID: HeaderName = HeaderName::from_static("pb-webhook-mid");

/// A parsed, checked delivery. Borrows from the request's headers and body.
#[derive(Debug)]
pub struct Delivery<'a> {
    /// `Pb-Webhook-Type`, e.g. `TAXINVOICE.STATE`. Required.
    pub webhook_type: &'a str,
    /// `Pb-Webhook-MID`: POPBiLL's identifier of the event.
    pub mid: Option<&'a str>,
    /// `Pb-Webhook-Corpnum`, else the body's `corpNum`.
    pub corp_num: Option<Cow<'a, str>>,
    /// `Pb-Webhook-EventType`, else the body's `eventType`.
    pub event_type: Option<Cow<'a, str>>,
    /// The body's `itemKey`: POPBiLL's document id.
    pub item_key: Option<Cow<'a, str>>,
    /// The body's `eventDT` (`yyyyMMddHHmmss`, Korean time).
    pub event_dt: Option<Cow<'a, str>>,
    /// The body's `stateCode` (a string or a number, by product) and
    /// `stateDT`: part of the content identity of a delivery without MID.
    pub state_code: Option<Cow<'a, str>>,
    pub state_dt: Option<Cow<'a, str>>,
    /// The raw body, forwarded byte for byte.
    pub body: &'a [u8],
}

impl<'a> Delivery<'a> {
    pub fn parse(headers: &'a HeaderMap, body: &'a [u8]) -> Result<Delivery<'a>, BridgeError> {
        let [ty, mid, corp, event] = pb_headers(headers);
        let webhook_type = ty?.ok_or(BridgeError::MissingHeader(SHOWN[0]))?;
        let mid = mid?;
        let corp_header = corp?;
        let event_header = event?;

        let fields = parse_body(body)?;
        Ok(Delivery {
            webhook_type,
            mid,
            corp_num: corp_header.map(Cow::Borrowed).or(fields.corp_num),
            event_type: event_header.map(Cow::Borrowed).or(fields.event_type),
            item_key: fields.item_key,
            event_dt: fields.event_dt,
            state_code: fields.state_code,
            state_dt: fields.state_dt,
            body,
        })
    }

    /// A delivery that did not parse, kept as it came for the dead-letter
    /// topic: whatever headers can be read, no body fields.
    pub fn raw(headers: &'a HeaderMap, body: &'a [u8]) -> Delivery<'a> {
        let [ty, mid, corp, event] = pb_headers(headers).map(|h| h.ok().flatten());
        Delivery {
            webhook_type: ty.unwrap_or(""),
            mid,
            corp_num: corp.map(Cow::Borrowed),
            event_type: event.map(Cow::Borrowed),
            item_key: None,
            event_dt: None,
            state_code: None,
            state_dt: None,
            body,
        }
    }

    /// The Kafka record key: one document's events share a partition, so
    /// consumers see them in the order Kafka received them.
    pub fn key(&self) -> Option<Cow<'a, str>> {
        match (&self.corp_num, &self.item_key) {
            (Some(c), Some(i)) => {
                let mut k = String::with_capacity(c.len() + 1 + i.len());
                k.push_str(c);
                k.push(':');
                k.push_str(i);
                Some(Cow::Owned(k))
            }
            _ => self.mid.map(Cow::Borrowed),
        }
    }
}

/// The `Pb-Webhook-*` headers as they are named in answers and logs, in
/// the order [`pb_headers`] gives them.
const SHOWN: [&str; 4] = [
    "Pb-Webhook-Type",
    "Pb-Webhook-MID",
    "Pb-Webhook-Corpnum",
    "Pb-Webhook-EventType",
];

/// The four `Pb-Webhook-*` headers (type, MID, corpnum, event type) as
/// text, found in one pass over the request's headers instead of four
/// lookups. The first value of a name is the one `HeaderMap::get` gives.
fn pb_headers(headers: &HeaderMap) -> [Result<Option<&str>, BridgeError>; 4] {
    let mut found: [Option<&HeaderValue>; 4] = [None; 4];
    for (name, value) in headers {
        let slot = match name.as_str() {
            "pb-webhook-type" => 0,
            "pb-webhook-mid" => 1,
            "pb-webhook-corpnum" => 2,
            "pb-webhook-eventtype" => 3,
            _ => continue,
        };
        found[slot].get_or_insert(value);
    }
    std::array::from_fn(|i| header_value(found[i], SHOWN[i]))
}

/// A header's value as text, trimmed; none when absent or blank.
fn header_value<'a>(
    value: Option<&'a HeaderValue>,
    shown: &'static str,
) -> Result<Option<&'a str>, BridgeError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let s = std::str::from_utf8(v.as_bytes()).map_err(|_| BridgeError::BadHeader(shown))?;
            let s = trim(s);
            Ok(if s.is_empty() { None } else { Some(s) })
        }
    }
}

#[cfg(test)]
mod tests;
