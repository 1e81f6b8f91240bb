//! The sample deliveries of `samples/deliveries.jsonl` (beside this file),
//! built into the binary: what `send` sends and what the AsyncAPI document shows as
//! examples. One file serves the tests, the sender and the documentation,
//! so they cannot drift apart.

use serde::Deserialize;

/// The fixture file, one JSON object a line.
const DELIVERIES: &str = include_str!("samples/deliveries.jsonl");

/// One realistic POPBiLL delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub name: String,
    /// As POPBiLL sends them, in the file's order.
    #[serde(deserialize_with = "ordered_headers")]
    pub headers: Vec<(String, String)>,
    /// The exact body text, sent byte for byte.
    pub body: String,
    #[serde(default)]
    pub(crate) note: Option<String>,
}

impl Sample {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Pb-Webhook-Type`.
    pub fn webhook_type(&self) -> &str {
        self.header("Pb-Webhook-Type").unwrap_or("")
    }

    /// `Pb-Webhook-EventType`, else the body's `eventType`: the event type
    /// the bridge routes by.
    pub fn event_type(&self) -> Option<String> {
        if let Some(e) = self.header("Pb-Webhook-EventType") {
            return Some(e.to_string());
        }
        self.body_json()?
            .get("eventType")?
            .as_str()
            .map(str::to_string)
    }

    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

fn ordered_headers<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<(String, String)>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of header names and values")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(kv) = m.next_entry::<String, String>()? {
                out.push(kv);
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}

/// Every sample, in the file's order.
pub fn all() -> Vec<Sample> {
    DELIVERIES
        .lines()
        .filter(|l| !l.trim().is_empty())
        // The file is part of the source tree; the unit test below proves
        // every line parses.
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The sample called `name`.
pub fn find(name: &str) -> Option<Sample> {
    all().into_iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests;
