//! What is sent: a delivery's headers and body, a fresh POPBiLL-shaped MID,
//! and the Basic credentials header.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::commands::samples::Sample;

/// One delivery: headers in the order they are sent, and the body bytes.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Delivery {
    pub fn from_sample(s: &Sample) -> Delivery {
        Delivery {
            headers: s.headers.clone(),
            body: Bytes::from(s.body.clone()),
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets a header, replacing any of the same name (case-insensitive) in
    /// its place, or adding it at the end.
    pub fn set_header(&mut self, name: &str, value: &str) {
        match self
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(h) => h.1 = value.to_string(),
            None => self.headers.push((name.to_string(), value.to_string())),
        }
    }

    /// The `Pb-Webhook-MID`.
    pub fn mid(&self) -> Option<&str> {
        self.header("Pb-Webhook-MID")
    }
}

/// A MID no other delivery has, shaped like POPBiLL's
/// (`025111409301-7c1d2e3f4a5b6c7d8e9f001`: 12 digits from the time, a
/// dash, 23 hex digits).
pub fn fresh_mid() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now();
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digits: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .skip(2)
        .take(11)
        .collect();
    let mut h = Sha256::new();
    h.update(nanos.to_be_bytes());
    h.update(std::process::id().to_be_bytes());
    h.update(N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("0{digits}-{}", &hex[..23])
}

/// `Authorization: Basic …` for `user:pass`.
pub(crate) fn basic_authorization(user_pass: &str) -> String {
    format!("Basic {}", base64(user_pass.as_bytes()))
}

fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests;
