//! Kafka: the producer and its records, the topics, and the in-process
//! mock cluster of `--dev`.
//!
//! - [`client`]: what every client shares (base settings, callbacks, the
//!   events they report);
//! - [`publish`]: a delivery handed to the producer (or to the open
//!   transaction) and the wait for Kafka's verdict; what a report proves
//!   is [`crate::receipt`];
//! - [`transactions`]: each record and its ledger line in one transaction,
//!   committed in groups;
//! - [`record`]: the record a delivery becomes (key, headers, CloudEvents);
//! - [`topics`]: topics exist, are created when missing, and have settings
//!   that keep the bridge's promise;
//! - [`mock`]: librdkafka's mock cluster for `--dev`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub(crate) mod certificate_check;
pub mod client;
pub mod mock;
pub mod publish;
pub mod record;
pub(crate) mod secret_files;
pub mod topics;
pub mod transactions;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`. Required: there is no
    /// sensible default for a production broker.
    pub brokers: String,
    /// librdkafka `message.timeout.ms`: how long the producer retries one
    /// record before reporting failure. Must be below
    /// `server.request_timeout`.
    #[serde(with = "humantime_serde")]
    pub message_timeout: Duration,
    /// Deadline for admin and metadata calls (topic creation, readiness).
    #[serde(with = "humantime_serde")]
    pub admin_timeout: Duration,
    /// How often readiness re-checks Kafka metadata and missing topics.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// librdkafka `statistics.interval.ms`; the source of the queue-depth
    /// and round-trip gauges, and of the producer's ID that readiness
    /// waits for. `0s` turns statistics off (readiness then cannot see the
    /// producer's ID and does not wait for it).
    #[serde(with = "humantime_serde")]
    pub statistics_interval: Duration,
    /// librdkafka `client.id`.
    pub client_id: String,
    /// Extra librdkafka properties, passed through as they are (SASL, TLS,
    /// `linger.ms`, ...). The ones that would weaken delivery guarantees are
    /// refused at start-up. Numbers and booleans are taken as their text.
    #[serde(deserialize_with = "crate::deserialize::property_map")]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties whose values are kept in files (mounted
    /// Secrets): property name → file, e.g. `"sasl.password" =
    /// "/etc/popbill-bridge/kafka/sasl-password"`. Read at start (a final
    /// newline is dropped); a changed file makes the bridge restart in
    /// order (exit status 4), since librdkafka takes credentials when a
    /// client is made. Watched every `limits.reload_interval`.
    pub secret_files: BTreeMap<String, std::path::PathBuf>,
    /// Records and their ledger lines in Kafka transactions
    /// (`[kafka.transactions]`).
    pub transactions: transactions::TransactionsConfig,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            message_timeout: Duration::from_secs(4),
            admin_timeout: Duration::from_secs(5),
            health_interval: Duration::from_secs(5),
            statistics_interval: Duration::from_secs(2),
            client_id: "popbill-bridge".into(),
            properties: BTreeMap::new(),
            secret_files: BTreeMap::new(),
            transactions: Default::default(),
        }
    }
}

/// Property names a config file may mention only through the bridge's own
/// settings, because the promise "OK means in Kafka" depends on them.
const FIXED_PROPERTIES: &[(&str, &str)] = &[
    ("acks", "acks is always \"all\""),
    ("request.required.acks", "acks is always \"all\""),
    ("enable.idempotence", "the producer is always idempotent"),
    ("message.timeout.ms", "use kafka.message_timeout instead"),
    ("delivery.timeout.ms", "use kafka.message_timeout instead"),
    ("bootstrap.servers", "use kafka.brokers instead"),
    ("metadata.broker.list", "use kafka.brokers instead"),
    (
        "statistics.interval.ms",
        "use kafka.statistics_interval instead",
    ),
    ("client.id", "use kafka.client_id instead"),
    ("transactional.id", "use kafka.transactions.id instead"),
    (
        "transaction.timeout.ms",
        "use kafka.transactions.timeout instead",
    ),
];

/// Substrings of property names whose values must never be printed.
const SECRET_MARKERS: &[&str] = &["password", "secret", "key", "token", "jaas"];

fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|m| name.contains(m)) && !name.ends_with(".location")
}

impl KafkaConfig {
    /// Everything about this section that can be checked without a
    /// network; each problem says what to change.
    pub fn check(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if self.brokers.trim().is_empty() {
            errs.push(
                "kafka.brokers is not set: give the bootstrap servers with --brokers host:port, \
                 POPBILL_BRIDGE_KAFKA__BROKERS or kafka.brokers in the config file \
                 (or run with --dev for an embedded, non-durable cluster)"
                    .to_string(),
            );
        } else if self.brokers.split(',').any(|b| b.trim().is_empty()) {
            errs.push(format!(
                "kafka.brokers {:?} has an empty entry: use host:port[,host:port]",
                self.brokers
            ));
        }
        if self.message_timeout < Duration::from_millis(100) {
            errs.push("kafka.message_timeout must be at least 100ms".into());
        }
        if self.admin_timeout.is_zero() || self.health_interval.is_zero() {
            errs.push("kafka.admin_timeout and kafka.health_interval must be above 0".into());
        }
        errs.extend(self.transactions.check(self.message_timeout));
        for (name, why) in FIXED_PROPERTIES {
            if self.properties.contains_key(*name) {
                errs.push(format!(
                    "kafka.properties.{name:?} cannot be set: {why}; remove it"
                ));
            }
        }
        errs
    }

    /// `message` with every configured property value replaced by
    /// `<redacted>`. librdkafka quotes values in its errors (and
    /// rust-rdkafka appends the value of a refused property), and a value
    /// is a secret whatever its property is called: a mistyped
    /// `sasl.passwrd` carries the password. Short values are replaced only
    /// where they stand alone, so that `"1"` does not garble every number.
    pub(crate) fn redact(&self, message: &str) -> String {
        let mut values: Vec<&str> = self
            .properties
            .values()
            .map(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = message.to_string();
        for v in values {
            out = if v.chars().count() >= 4 {
                out.replace(v, "<redacted>")
            } else {
                replace_standalone(&out, v, "<redacted>")
            };
        }
        out
    }

    /// A Kafka client error fit to print: the property it concerns, and
    /// librdkafka's reason without any property value.
    pub(crate) fn describe_client_error(&self, e: &rdkafka::error::KafkaError) -> String {
        match e {
            rdkafka::error::KafkaError::ClientConfig(_, reason, property, value) => {
                let reason = self.redact(reason);
                // The refused value itself, configured or not.
                let reason = if value.is_empty() {
                    reason
                } else {
                    reason.replace(value.as_str(), "<redacted>")
                };
                format!("property {property:?}: {reason}")
            }
            other => self.redact(&other.to_string()),
        }
    }

    /// Builds the producer exactly as start-up does, but with no bootstrap
    /// servers, so librdkafka checks every property (names, values, and
    /// combinations such as idempotence limits) without connecting to
    /// anything. For `--check-config`.
    pub(crate) fn check_client(&self, max_record_bytes: usize) -> Result<(), String> {
        let offline = KafkaConfig {
            brokers: String::new(),
            ..self.clone()
        };
        let metrics = std::sync::Arc::new(crate::telemetry::metrics::Metrics::new(&[]));
        let refused = |e: rdkafka::error::KafkaError| {
            format!(
                "kafka.properties: {} (fix or remove it)",
                self.describe_client_error(&e)
            )
        };
        publish::create_producer(&offline, max_record_bytes, metrics, Default::default())
            .map(drop)
            .map_err(refused)?;
        // A transactional writer adds its own limits (message.timeout.ms
        // and socket.timeout.ms within the transaction timeout).
        if self.transactions.enabled {
            transactions::writer_config(
                &publish::producer_config(&offline, max_record_bytes),
                "check-config",
                self.transactions.timeout,
            )
            .create::<rdkafka::producer::BaseProducer>()
            .map(drop)
            .map_err(refused)?;
        }
        Ok(())
    }
}

/// Replaces `needle` in `hay` where it is not part of a longer word or
/// number.
fn replace_standalone(hay: &str, needle: &str, with: &str) -> String {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(hay.len());
    let mut rest = hay;
    while let Some(i) = rest.find(needle) {
        let before = if i > 0 {
            rest[..i].chars().next_back()
        } else {
            out.chars().next_back()
        };
        let after = rest[i + needle.len()..].chars().next();
        out.push_str(&rest[..i]);
        if is_word(before) || is_word(after) {
            out.push_str(needle);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + needle.len()..];
    }
    out.push_str(rest);
    out
}

impl fmt::Debug for KafkaConfig {
    // Written by hand so that SASL passwords never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_property(k) || self.secret_files.contains_key(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("message_timeout", &self.message_timeout)
            .field("admin_timeout", &self.admin_timeout)
            .field("health_interval", &self.health_interval)
            .field("statistics_interval", &self.statistics_interval)
            .field("client_id", &self.client_id)
            .field("properties", &properties)
            .field("secret_files", &self.secret_files)
            .field("transactions", &self.transactions)
            .finish()
    }
}

/// The topic's partitions, from the cluster's metadata; an error when the
/// topic has none (it does not exist). Blocking: call it off the runtime.
pub fn partitions_of<C, K>(
    consumer: &K,
    topic: &str,
    timeout: Duration,
) -> Result<std::collections::BTreeSet<i32>, String>
where
    C: rdkafka::consumer::ConsumerContext,
    K: rdkafka::consumer::Consumer<C>,
{
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| e.to_string())?;
    let partitions: std::collections::BTreeSet<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(format!("topic {topic} has no partitions (does it exist?)"));
    }
    Ok(partitions)
}
