//! The sample deliveries (`src/commands/samples/deliveries.jsonl`, the
//! bridge's own, and `tests/fixtures/bad-deliveries.jsonl`), a tax-invoice Issue
//! delivery to post, and credentials to add to one.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One line of `deliveries.jsonl` or `bad-deliveries.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub name: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Sample {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_list(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A body field as text (strings as they are, numbers printed).
    pub fn body_field(&self, field: &str) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        match v.get(field)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

pub fn samples(file: &str) -> Vec<Sample> {
    // The bridge's own samples are product data (built into `send`);
    // the hostile ones are test fixtures.
    let dir = match file {
        "deliveries.jsonl" => "src/commands/samples",
        _ => "tests/fixtures",
    };
    let path = format!("{}/{dir}/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}: {l}")))
        .collect()
}

/// Headers of a tax-invoice Issue delivery with the given MID.
pub fn issue_headers(mid: &str) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("Pb-Webhook-Type".into(), "TAXINVOICE.STATE".into()),
        ("Pb-Webhook-MID".into(), mid.into()),
        ("Pb-Webhook-Corpnum".into(), "1234567890".into()),
        ("Pb-Webhook-EventType".into(), "Issue".into()),
    ]
}

pub const ISSUE_BODY: &[u8] = br#"{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,"stateDT":"20251114093010","eventDT":"20251114093011","eventType":"Issue"}"#;

/// `popbill:s3cret`, the Basic credentials of the samples.
pub const GOOD_BASIC: &str = "cG9wYmlsbDpzM2NyZXQ=";
/// `wrong:wrong`
pub const BAD_BASIC: &str = "d3Jvbmc6d3Jvbmc=";

/// `headers` with their credentials replaced: Basic `basic_b64` and API
/// key `key`, each when given.
pub fn with_auth(
    headers: &[(String, String)],
    basic_b64: Option<&str>,
    key: Option<&str>,
) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("x-api-key")
        })
        .cloned()
        .collect();
    if let Some(b) = basic_b64 {
        h.push(("Authorization".into(), format!("Basic {b}")));
    }
    if let Some(k) = key {
        h.push(("X-Api-Key".into(), k.into()));
    }
    h
}

/// `headers` with the MID replaced by `mid`.
pub fn with_mid(headers: &[(String, String)], mid: &str) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("Pb-Webhook-MID"))
        .cloned()
        .collect();
    h.push(("Pb-Webhook-MID".into(), mid.into()));
    h
}
