//! The project's sample deliveries (`tests/fixtures/` at the repository
//! root), turned into Kafka records the way popbill-bridge writes them
//! (`src/record.rs`, `src/delivery.rs`): lower-case POPBiLL headers minus
//! credentials and hop headers, the receive time, the CloudEvents
//! attributes, the key `corpNum:itemKey` (else the id), the body as sent.

#![allow(dead_code)]

use std::path::PathBuf;

use popbill_events::serde_json::{self, Value};
use popbill_events::{RECEIVED_AT, REJECTION_REASON, RawRecord};

/// One sample delivery.
pub struct Sample {
    pub name: String,
    /// Header (name, value) pairs as POPBiLL sends them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A record as the bridge writes it.
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_millis: i64,
}

impl Record {
    pub fn raw(&self) -> RawRecord<'_> {
        RawRecord {
            key: self.key.as_deref(),
            value: Some(&self.value),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), Some(v.as_slice())))
                .collect(),
            timestamp_millis: Some(self.timestamp_millis),
        }
    }
}

/// Where `file` lives: the bridge's own samples (`send`, the AsyncAPI
/// examples) are product data; the hostile ones are test fixtures.
fn sample_path(file: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    match file {
        "deliveries.jsonl" => root.join("src/commands/samples").join(file),
        _ => root.join("tests/fixtures").join(file),
    }
}

/// Every line of `file` (`deliveries.jsonl` or `bad-deliveries.jsonl`).
pub fn samples(file: &str) -> Vec<Sample> {
    let path = sample_path(file);
    let text = std::fs::read_to_string(&path).expect("fixture file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("fixture line is JSON");
            let name = v["name"].as_str().expect("name").to_owned();
            let headers = v["headers"]
                .as_object()
                .expect("headers")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("header value").to_owned()))
                .collect();
            let body = body(v["body"].as_str().expect("body"));
            Sample {
                name,
                headers,
                body,
            }
        })
        .collect()
}

/// The body bytes, with the two conventions of the fixtures' README:
/// `<generate: …>` bodies are generated, a leading `\xff\xfe` is two raw
/// bytes.
fn body(text: &str) -> Vec<u8> {
    if text.starts_with("<generate:") {
        if text.contains("nested arrays") {
            let n = 100_000;
            let mut b = vec![b'['; n];
            b.extend(std::iter::repeat_n(b']', n));
            return b;
        }
        // An 8 MiB JSON object.
        let filler = "가".repeat(8 * 1024 * 1024 / 3);
        return format!(
            r#"{{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,"stateDT":"20251114093010","memo":"{filler}"}}"#
        )
        .into_bytes();
    }
    if let Some(rest) = text.strip_prefix("\\xff\\xfe") {
        let mut b = vec![0xFF, 0xFE];
        b.extend_from_slice(rest.as_bytes());
        return b;
    }
    text.as_bytes().to_vec()
}

const NOT_FORWARDED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "host",
    "content-length",
    "connection",
];

/// The record the bridge writes for `s` (received at 2025-11-14 10:00 UTC).
/// `rejection` marks a dead letter.
pub fn record(s: &Sample, rejection: Option<&str>) -> Record {
    let received_ms: i64 = 1_763_114_400_000;
    let header = |name: &str| {
        s.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body: Option<serde_json::Map<String, Value>> = serde_json::from_slice(&s.body).ok();
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mid = header("pb-webhook-mid");
    let id = mid
        .clone()
        .unwrap_or_else(|| format!("content:{:032x}", s.name.len()));
    let corp = header("pb-webhook-corpnum").or_else(|| field("corpNum"));
    let item = field("itemKey");
    let event = header("pb-webhook-eventtype").or_else(|| field("eventType"));
    let key = match (&corp, &item) {
        (Some(c), Some(i)) => Some(format!("{c}:{i}")),
        _ => mid.clone(),
    };
    let ce_time = field("eventDT")
        .filter(|t| t.len() == 14)
        .map(|t| {
            format!(
                "{}-{}-{}T{}:{}:{}+09:00",
                &t[0..4],
                &t[4..6],
                &t[6..8],
                &t[8..10],
                &t[10..12],
                &t[12..14]
            )
        })
        .unwrap_or_else(|| "2025-11-14T10:00:00.000Z".to_owned());

    let mut headers: Vec<(String, Vec<u8>)> = s
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone().into_bytes()))
        .filter(|(n, _)| !NOT_FORWARDED.contains(&n.as_str()) && !n.starts_with("ce_"))
        .collect();
    let mut add = |n: &str, v: String| headers.push((n.to_owned(), v.into_bytes()));
    add(RECEIVED_AT, "2025-11-14T10:00:00.000Z".to_owned());
    add("ce_specversion", "1.0".to_owned());
    add("ce_id", id);
    add("ce_source", "https://www.popbill.com".to_owned());
    add(
        "ce_type",
        format!(
            "com.popbill.webhook.{}.{}",
            header("pb-webhook-type").unwrap_or_default(),
            event.unwrap_or_else(|| "unknown".to_owned())
        ),
    );
    add("ce_time", ce_time);
    if let Some(i) = item {
        add("ce_subject", i);
    }
    if let Some(r) = rejection {
        add(REJECTION_REASON, r.to_owned());
    }
    Record {
        key: key.map(String::into_bytes),
        value: s.body.clone(),
        headers,
        timestamp_millis: received_ms,
    }
}
