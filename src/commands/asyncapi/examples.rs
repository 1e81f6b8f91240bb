//! A message's examples: each sample delivery as the bridge writes it,
//! built with the bridge's own header builder.

use std::time::{Duration, SystemTime};

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use rdkafka::message::Headers as _;
use serde_json::{Map, Value, json};

use crate::commands::samples::Sample;
use crate::dedup::identity::{Identity, Namespace};
use crate::delivery::Delivery;
use crate::kafka::record;
use crate::kafka::record::CloudEventsConfig;

/// One example: the sample delivery as the bridge writes it.
pub(super) fn example(s: &Sample, topic: &str, ce: &CloudEventsConfig) -> Option<Value> {
    let mut request = HeaderMap::new();
    for (k, v) in &s.headers {
        request.append(
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).ok()?,
            HeaderValue::from_str(v).ok()?,
        );
    }
    let body = s.body.as_bytes();
    let delivery = Delivery::parse(&request, body).ok()?;
    let identity = Identity::of(&delivery, Namespace::Routed, topic);
    // A receive time a quarter second after the event time.
    let received = delivery
        .event_dt
        .as_deref()
        .and_then(record::korean_datetime_to_rfc3339)
        .and_then(|t| humantime::parse_rfc3339(&format!("{}Z", &t[..19])).ok())
        .map(|t| t - Duration::from_secs(9 * 3600) + Duration::from_millis(250))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let rec = record::headers(&request, &delivery, &identity.id, ce, received);
    let mut headers = Map::new();
    for h in rec.iter() {
        let v = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
        headers.insert(h.key.to_string(), Value::String(v));
    }
    let key = delivery.key().map(|k| k.into_owned());
    let mut summary = s.note.clone().unwrap_or_else(|| s.name.replace('-', " "));
    if let Some(k) = key {
        summary.push_str(&format!(" (key `{k}`)"));
    }
    Some(json!({
        "name": s.name,
        "summary": summary,
        "headers": headers,
        "payload": s.body_json()?,
    }))
}
