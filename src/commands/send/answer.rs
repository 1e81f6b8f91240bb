//! How a try went: the HTTP answer, or why there was none, and POPBiLL's
//! rule for counting an answer as a delivery.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::failure::Failure;
use crate::http::access::POPBILL_SOURCES;

/// How a try went.
#[derive(Debug)]
pub struct TryOutcome {
    /// When the try started.
    pub at: SystemTime,
    /// How long until the answer was read or the try failed.
    pub elapsed: Duration,
    /// The address connected to, once known.
    pub peer: Option<SocketAddr>,
    pub result: Result<Answer, Failure>,
}

impl TryOutcome {
    /// Whether POPBiLL would count this delivery as done.
    pub fn succeeded(&self) -> bool {
        matches!(&self.result, Ok(a) if a.accepted())
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    /// The body, at most 64 KiB of it.
    pub body: Bytes,
}

impl Answer {
    /// POPBiLL's rule: 200 with body `OK` or `{"result":"OK"}`.
    pub fn accepted(&self) -> bool {
        popbill_accepts(self.status, &self.body)
    }

    /// Why POPBiLL would not count it, and what to look at; `None` when it
    /// would.
    pub fn problem(&self) -> Option<String> {
        if self.accepted() {
            return None;
        }
        let header = |n: &str| {
            self.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        Some(match self.status {
            200 if self.body.is_empty() => {
                "status 200 with an empty body: POPBiLL counts only OK or {\"result\":\"OK\"}"
                    .into()
            }
            200 => format!(
                "status 200 but the body is {}: POPBiLL counts only OK or {{\"result\":\"OK\"}}",
                shown_body(&self.body)
            ),
            s @ 300..=399 => format!(
                "status {s}, a redirect to {:?}: the callback URL itself must answer OK",
                header("location")
            ),
            401 => "401: the receiver wants credentials (--basic user:pass or --api-key KEY, the values set in POPBiLL)".into(),
            403 => format!(
                "403: refused, e.g. by a source allow-list (POPBiLL sends from {}; this machine is not one of them) or wrong credentials",
                POPBILL_SOURCES.join(" and ")
            ),
            404 => "404: nothing at this path (popbill-bridge listens on server.webhook_path, /popbill/webhook by default)".into(),
            503 => {
                let after = header("retry-after");
                format!(
                    "503: the receiver could not take it now{}; POPBiLL sends it again later",
                    if after.is_empty() { String::new() } else { format!(" (Retry-After: {after})") }
                )
            }
            s => format!("status {s}: POPBiLL counts only 200 with body OK or {{\"result\":\"OK\"}}"),
        })
    }
}

/// POPBiLL's rule for a successful delivery: status 200 and body `OK`
/// (exactly) or the JSON `{"result":"OK"}`.
fn popbill_accepts(status: u16, body: &[u8]) -> bool {
    if status != 200 {
        return false;
    }
    if body == b"OK" {
        return true;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => {
            m.len() == 1 && m.get("result").and_then(|v| v.as_str()) == Some("OK")
        }
        _ => false,
    }
}

/// A body as shown to people: quoted, escaped, cut at 200 characters.
pub(crate) fn shown_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut: String = text.chars().take(200).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("\"{}\"{more}", cut.escape_debug())
}

#[cfg(test)]
mod tests;
