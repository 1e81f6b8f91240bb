//! `POPBILL_BRIDGE_SECTION__KEY=value` variables laid over the file's
//! table, each typed by the setting it names (from the defaults' schema),
//! with a message that names the setting when a variable names none.

use super::*;

/// Settings that are maps with keys of the user's choosing, and whether an
/// environment variable's `_` stands for a `.` in the key (Kafka property
/// names such as `sasl.password`).
const MAP_SETTINGS: &[(&str, &str, bool)] = &[
    ("kafka", "properties", true),
    ("kafka", "secret_files", true),
    ("topics", "settings", true),
    ("routes", "overrides", false),
];

/// Every setting with a value of the type it takes, to read environment
/// variables by: the defaults, plus the optional settings (which have no
/// default to take a type from).
fn env_schema() -> Result<toml::Table, String> {
    let mut sample = Config::default();
    sample.tls.cert_file = Some(PathBuf::from("cert"));
    sample.tls.key_file = Some(PathBuf::from("key"));
    match toml::Value::try_from(&sample) {
        Ok(toml::Value::Table(t)) => Ok(t),
        Ok(_) => Err("the configuration is not a table".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Lays `POPBILL_BRIDGE_SECTION__KEY=value` variables over the file's table.
/// A value takes the type of the setting it sets, never a guess from how it
/// looks: a string setting gets the text as it is (`API_KEYS=123456` is a
/// key, not a number), a list setting a comma-separated list of strings,
/// a number or boolean setting the parsed value (or an error naming the
/// variable). Under `kafka.properties` and `topics.settings` the key is a
/// Kafka property: `SASL_PASSWORD` becomes `sasl.password`. Values never
/// appear in errors: they may be secrets.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let schema = env_schema().map_err(|message| ConfigError::Env {
        name: ENV_PREFIX.into(),
        message,
    })?;
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // Plain `POPBILL_BRIDGE_CONFIG` and friends belong to the CLI.
        if !rest.contains("__") {
            continue;
        }
        let err = |message: String| ConfigError::Env {
            name: name.clone(),
            message,
        };
        let mut path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(err("empty path segment (use SECTION__KEY)".into()));
        }
        let map = MAP_SETTINGS
            .iter()
            .find(|(section, key, _)| path.len() > 2 && path[0] == *section && path[1] == *key);
        let value = match map {
            Some((section, key, dotted)) => {
                if path.len() != 3 {
                    return Err(err(format!(
                        "name one key of {section}.{key}, as {ENV_PREFIX}{}__{}__KEY",
                        section.to_ascii_uppercase(),
                        key.to_ascii_uppercase()
                    )));
                }
                if *dotted {
                    path[2] = path[2].replace('_', ".");
                }
                toml::Value::String(raw)
            }
            None => {
                let dotted = path.join(".");
                let mut at: Option<&toml::Value> = None;
                let mut level = Some(&schema);
                for seg in &path {
                    at = level.and_then(|t| t.get(seg));
                    level = at.and_then(toml::Value::as_table);
                }
                match at {
                    None => {
                        return Err(err(format!(
                            "there is no setting {dotted}: check the name against \
                             config/popbill-bridge.toml (sections and keys are joined with __)"
                        )));
                    }
                    Some(toml::Value::Table(_)) => {
                        return Err(err(format!(
                            "{dotted} is a section: name one of its settings, as {name}__KEY"
                        )));
                    }
                    Some(kind) => typed_env_value(kind, raw).map_err(&err)?,
                }
            }
        };
        let (last, parents) = path
            .split_last()
            .ok_or_else(|| err("no setting named".into()))?;
        let mut cursor = &mut *table;
        for seg in parents {
            let entry = cursor
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = match entry {
                toml::Value::Table(t) => t,
                _ => return Err(err(format!("{seg} is a value, not a section"))),
            };
        }
        cursor.insert(last.clone(), value);
    }
    Ok(())
}

/// `raw` read as the type of `kind`, the setting's default value.
fn typed_env_value(kind: &toml::Value, raw: String) -> Result<toml::Value, String> {
    let text = raw.trim();
    Ok(match kind {
        // Also as a TOML array of strings, as older manifests wrote it.
        toml::Value::Array(_) if text.starts_with('[') && text.ends_with(']') => {
            let strings = format!("v = {text}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .and_then(|v| match v {
                    toml::Value::Array(a) if a.iter().all(toml::Value::is_str) => {
                        Some(toml::Value::Array(a))
                    }
                    _ => None,
                });
            strings.ok_or_else(|| {
                "expected a comma-separated list (a,b) or a TOML array of strings ([\"a\",\"b\"])"
                    .to_string()
            })?
        }
        toml::Value::Array(_) => toml::Value::Array(
            crate::deserialize::split_list(&raw)
                .into_iter()
                .map(toml::Value::String)
                .collect(),
        ),
        toml::Value::Integer(_) => toml::Value::Integer(
            text.parse()
                .map_err(|_| "expected a whole number, e.g. 1024".to_string())?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            text.parse()
                .map_err(|_| "expected a number, e.g. 0.5".to_string())?,
        ),
        toml::Value::Boolean(_) => match text.to_ascii_lowercase().as_str() {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            _ => return Err("expected true or false".into()),
        },
        // Strings, durations ("5s"), addresses, names.
        _ => toml::Value::String(raw),
    })
}
