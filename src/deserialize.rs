//! How configuration values are read where serde's defaults are not
//! enough: lists from one comma-separated string (environment variables),
//! and property maps whose values Kafka takes as text. Shared by the
//! sections that own such settings.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A map of librdkafka or topic properties. Kafka takes every value as
/// text, so `linger.ms = 5` means `"5"`. The error for anything else does
/// not repeat the value: it may be a secret.
pub(crate) fn property_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, toml::Value>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let text = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "property {k:?} must be a string, a number or a boolean"
                )));
            }
        };
        out.insert(k, text);
    }
    Ok(out)
}

pub(crate) fn string_or_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    // Empty entries are kept, for validation to refuse: `api_keys = ""`
    // must not mean "no key needed".
    Ok(match Either::deserialize(d)? {
        Either::One(s) => split_list(&s),
        Either::Many(v) => v,
    })
}

/// The comma-separated form of a list setting, entries trimmed.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(|e| e.trim().to_string()).collect()
}
