//! The one typed configuration: defaults, then the TOML file, then
//! `POPBILL_BRIDGE_*` environment variables, then CLI flags; validated once at
//! start-up so a bad setting stops the process with a message that says how to
//! fix it instead of failing on the first delivery.
//!
//! Every setting is documented in `config/popbill-bridge.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::route::{self, RouteKey, Router};

/// Prefix of the environment variables that override settings, e.g.
/// `POPBILL_BRIDGE_KAFKA__BROKERS` for `kafka.brokers`.
pub const ENV_PREFIX: &str = "POPBILL_BRIDGE_";

/// Start of the warning about a bridge that checks no sender.
pub const OPEN_TO_ANYONE: &str = "neither credentials nor a source allow-list is configured";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    pub routes: RoutesConfig,
    pub cloudevents: CloudEventsConfig,
    pub dedup: DedupConfig,
    pub auth: AuthConfig,
    pub access: AccessConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub dead_letter: DeadLetterConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the webhook listener (the one POPBiLL reaches).
    pub listen: SocketAddr,
    /// Address of the admin listener: /metrics, /healthz, /readyz. Keep it
    /// off the internet.
    pub admin_listen: SocketAddr,
    /// Path POPBiLL posts to; everything else on the webhook port is a 404.
    pub webhook_path: String,
    /// Upper bound for one delivery, from the first byte of the request to
    /// the answer. Kafka's own timeout sits below it so a delivery report
    /// always arrives before the deadline.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest accepted body; larger ones get 413 while still being read.
    pub max_body_bytes: usize,
    /// Value of the `Retry-After` header on 503 answers.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Body of the success answer: `"plain"` sends `OK`, `"json"` sends
    /// `{"result":"OK"}`. POPBiLL accepts both.
    pub ok_body: OkBody,
    /// How long to keep serving after SIGTERM with /readyz failing, so
    /// load balancers stop sending before the listener closes.
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
    /// Budget for in-flight deliveries to finish and the producer to flush
    /// after the listener closed.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            webhook_path: "/popbill/webhook".into(),
            request_timeout: Duration::from_secs(5),
            max_body_bytes: 1024 * 1024,
            retry_after: Duration::from_secs(60),
            ok_body: OkBody::Plain,
            shutdown_delay: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OkBody {
    Plain,
    Json,
}

impl OkBody {
    pub fn as_str(self) -> &'static str {
        match self {
            OkBody::Plain => "OK",
            OkBody::Json => r#"{"result":"OK"}"#,
        }
    }
}

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
    /// and round-trip gauges. `0s` turns statistics off.
    #[serde(with = "humantime_serde")]
    pub statistics_interval: Duration,
    /// librdkafka `client.id`.
    pub client_id: String,
    /// Extra librdkafka properties, passed through as they are (SASL, TLS,
    /// `linger.ms`, ...). The ones that would weaken delivery guarantees are
    /// refused at start-up. Numbers and booleans are taken as their text.
    #[serde(deserialize_with = "property_map")]
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            message_timeout: Duration::from_secs(4),
            admin_timeout: Duration::from_secs(5),
            health_interval: Duration::from_secs(5),
            statistics_interval: Duration::from_secs(10),
            client_id: "popbill-bridge".into(),
            properties: BTreeMap::new(),
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
];

/// Substrings of property names whose values must never be printed.
const SECRET_MARKERS: &[&str] = &["password", "secret", "key", "token", "jaas"];

pub fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|m| name.contains(m)) && !name.ends_with(".location")
}

impl KafkaConfig {
    /// `message` with every configured property value replaced by
    /// `<redacted>`. librdkafka quotes values in its errors (and
    /// rust-rdkafka appends the value of a refused property), and a value
    /// is a secret whatever its property is called: a mistyped
    /// `sasl.passwrd` carries the password. Short values are replaced only
    /// where they stand alone, so that `"1"` does not garble every number.
    pub fn redact(&self, message: &str) -> String {
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
    pub fn describe_client_error(&self, e: &rdkafka::error::KafkaError) -> String {
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
    pub fn check_client(&self) -> Result<(), String> {
        let offline = KafkaConfig {
            brokers: String::new(),
            ..self.clone()
        };
        let metrics = std::sync::Arc::new(crate::telemetry::metrics::Metrics::new(&[]));
        let config = Config {
            kafka: offline,
            ..Config::default()
        };
        crate::kafka::publish::create_producer(&config, metrics, Default::default())
            .map(drop)
            .map_err(|e| {
                format!(
                    "kafka.properties: {} (fix or remove it)",
                    self.describe_client_error(&e)
                )
            })
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
                let shown = if is_secret_property(k) {
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
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Create missing topics through the admin API. When false, a missing
    /// topic fails readiness and deliveries routed to it get 503.
    pub create: bool,
    /// Partitions of topics the bridge creates.
    pub partitions: i32,
    /// Replication factor of topics the bridge creates.
    pub replication_factor: i32,
    /// Topic-level settings for topics the bridge creates
    /// (`min.insync.replicas`, `retention.ms`, ...). Laid over the defaults
    /// key by key: setting `retention.ms` must not drop
    /// `min.insync.replicas=2`, or `acks=all` would quietly mean one replica.
    /// A default is changed by giving its key another value.
    #[serde(deserialize_with = "settings_over_defaults")]
    pub settings: BTreeMap<String, String>,
}

/// Topic settings every created topic gets unless configured otherwise.
fn default_topic_settings() -> BTreeMap<String, String> {
    BTreeMap::from([("min.insync.replicas".to_string(), "2".to_string())])
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            create: true,
            partitions: 6,
            replication_factor: 3,
            settings: default_topic_settings(),
        }
    }
}

fn settings_over_defaults<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let mut settings = default_topic_settings();
    settings.extend(property_map(d)?);
    Ok(settings)
}

/// A map of librdkafka or topic properties. Kafka takes every value as
/// text, so `linger.ms = 5` means `"5"`. The error for anything else does
/// not repeat the value: it may be a secret.
fn property_map<'de, D: serde::Deserializer<'de>>(
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutesConfig {
    /// Topic name template for known event types; `{type}` is the webhook
    /// type and `{event}` the event type, both normalised.
    pub template: String,
    /// Topic for every event type not listed in `known`.
    pub fallback: String,
    /// The event types that get a topic of their own, as
    /// `"WEBHOOK.TYPE:EventType"`.
    pub known: Vec<String>,
    /// Explicit topics for some event types, replacing the template.
    pub overrides: BTreeMap<String, String>,
}

impl Default for RoutesConfig {
    fn default() -> Self {
        Self {
            template: "popbill.{type}.{event}".into(),
            fallback: "popbill.unrouted".into(),
            known: route::DEFAULT_KNOWN.iter().map(|s| s.to_string()).collect(),
            overrides: BTreeMap::new(),
        }
    }
}

/// Credentials POPBiLL must present. Each list may also be given as one
/// comma-separated string. An empty entry, or a file without a credential,
/// is an error rather than "no credential": a setting that quietly yields
/// nothing would turn authentication off.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Valid HTTP Basic credentials, `user:password`.
    #[serde(deserialize_with = "string_or_list")]
    pub basic: Vec<String>,
    /// Files with one `user:password` per line (Kubernetes Secret mounts);
    /// re-read when they change.
    pub basic_files: Vec<PathBuf>,
    /// Valid `X-Api-Key` values.
    #[serde(deserialize_with = "string_or_list")]
    pub api_keys: Vec<String>,
    /// Files with one API key per line; re-read when they change.
    pub api_key_files: Vec<PathBuf>,
}

impl AuthConfig {
    /// True when any credential setting is given.
    pub fn is_configured(&self) -> bool {
        !(self.basic.is_empty()
            && self.basic_files.is_empty()
            && self.api_keys.is_empty()
            && self.api_key_files.is_empty())
    }

    /// What is wrong with the inline settings (files are read by
    /// [`crate::http::auth::Auth`]). Never shows a secret.
    pub fn problems(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let empty = |what: &str| {
            format!(
                "{what} has an empty entry: it would accept an empty credential; \
                 remove the entry or give the value (check the variable is set)"
            )
        };
        if self.basic.iter().any(|b| b.trim().is_empty()) {
            errs.push(empty("auth.basic"));
        } else if self.basic.iter().any(|b| !b.contains(':')) {
            errs.push("auth.basic: every entry must be user:password".into());
        } else if self
            .basic
            .iter()
            .any(|b| b.split_once(':').is_some_and(|(_, pw)| pw.is_empty()))
        {
            errs.push("auth.basic: an entry has an empty password; give user:password".into());
        }
        if self.api_keys.iter().any(|k| k.trim().is_empty()) {
            errs.push(empty("auth.api_keys"));
        }
        for (what, files) in [
            ("auth.basic_files", &self.basic_files),
            ("auth.api_key_files", &self.api_key_files),
        ] {
            if files.iter().any(|f| f.as_os_str().is_empty()) {
                errs.push(format!(
                    "{what} has an empty entry: remove it or give the file's path"
                ));
            }
        }
        errs
    }
}

impl fmt::Debug for AuthConfig {
    // Secrets are counted, never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("basic", &format!("<{} redacted>", self.basic.len()))
            .field("basic_files", &self.basic_files)
            .field("api_keys", &format!("<{} redacted>", self.api_keys.len()))
            .field("api_key_files", &self.api_key_files)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Source networks allowed to deliver (CIDR or address; `"popbill"` is
    /// POPBiLL's two documented addresses). Empty: any source.
    #[serde(deserialize_with = "string_or_list")]
    pub allow: Vec<String>,
    /// Proxies (ingress controllers, load balancers) whose
    /// `client_ip_header` is believed.
    #[serde(deserialize_with = "string_or_list")]
    pub trusted_proxies: Vec<String>,
    /// The one header the trusted proxies write the client's address in:
    /// `x-forwarded-for` (ingress-nginx, AWS ALB, Envoy), `forwarded`
    /// (RFC 7239), or another list-of-addresses header such as
    /// `x-real-ip`. Named, never guessed: a proxy that writes one header
    /// passes the others through as the client sent them.
    pub client_ip_header: String,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            trusted_proxies: Vec::new(),
            client_ip_header: "x-forwarded-for".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_file`, the webhook port speaks TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open webhook connections at most; more are closed at once.
    pub max_connections: usize,
    /// Deliveries handled at once at most; more get 503 with
    /// `Retry-After` (POPBiLL retries, so shedding loses nothing).
    pub max_inflight: usize,
    /// Request headers at most.
    pub max_headers: usize,
    /// Bytes of the request line and headers at most.
    pub max_header_bytes: usize,
    /// Time a client has to send a request's headers, counted from when
    /// the connection is ready for the next request — so it is also how
    /// long an idle keep-alive connection stays open. (The body has until
    /// `server.request_timeout`.)
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How often credential and certificate files are checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_inflight: 512,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(30),
            reload_interval: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterConfig {
    /// Malformed deliveries (not JSON, not an object, not UTF-8, too deep,
    /// no `Pb-Webhook-Type`) from a verified sender (valid credentials or
    /// an allowed source) are written as they are to `topic`, with the
    /// reason in a header, and answered `OK`, so a permanently broken body
    /// does not loop through POPBiLL's retries. When false, or from an
    /// unverified sender, they get 400.
    pub enabled: bool,
    pub topic: String,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            topic: "popbill.deadletter".into(),
        }
    }
}

fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(|e| e.trim().to_string()).collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Recognise copies of an event already published and acknowledge them
    /// without a second record.
    pub enabled: bool,
    /// How long an event is remembered after Kafka confirmed it.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Memory cap, in remembered events (about 40 bytes each). Beyond it
    /// the oldest eighth of the window is forgotten early.
    pub max_entries: usize,
    /// The ledger topic every replica writes and follows.
    pub ledger_topic: String,
    /// Partitions of the ledger topic when the bridge creates it.
    pub ledger_partitions: i32,
    /// Create the ledger topic (`cleanup.policy=delete`,
    /// `retention.ms` = twice the window) if it is missing. When false, a
    /// missing ledger fails readiness.
    pub create_ledger: bool,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(48 * 3600),
            max_entries: 2_000_000,
            ledger_topic: "popbill.bridge.ledger".into(),
            ledger_partitions: 3,
            create_ledger: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudEventsConfig {
    /// `ce_source` attribute of every record.
    pub source: String,
    /// Prefix of the `ce_type` attribute; the webhook and event types follow.
    pub type_prefix: String,
}

impl Default for CloudEventsConfig {
    fn default() -> Self {
        Self {
            source: "https://www.popbill.com".into(),
            type_prefix: "com.popbill.webhook".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `popbill_bridge=debug,rdkafka=warn`.
    /// `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What went wrong while loading or checking the configuration. Each
/// problem is one line that names the setting and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads the file (if any) and the environment, in that order of
    /// precedence below the CLI flags the caller applies afterwards.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let shown = path.map(|p| p.display().to_string()).unwrap_or_default();
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: shown.clone(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: shown.clone(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        Config::deserialize(table).map_err(|e| ConfigError::Parse {
            path: if shown.is_empty() {
                "(environment)".into()
            } else {
                shown
            },
            message: e.to_string(),
        })
    }

    /// What is allowed but probably a mistake, one line each. Start-up logs
    /// them as warnings and `--check-config` prints them.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.auth.is_configured() && self.access.allow.is_empty() {
            out.push(format!(
                "{OPEN_TO_ANYONE}: anyone who can reach server.listen can publish to Kafka; \
                 set auth.api_keys / auth.basic (the values turned on in POPBiLL's settings) \
                 and/or access.allow = [\"popbill\"]"
            ));
        }
        out
    }

    /// Checks everything that can be checked without a network, and reports
    /// every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errs = Vec::new();
        let s = &self.server;
        let k = &self.kafka;

        if k.brokers.trim().is_empty() {
            errs.push(
                "kafka.brokers is not set: give the bootstrap servers with --brokers host:port, \
                 POPBILL_BRIDGE_KAFKA__BROKERS or kafka.brokers in the config file \
                 (or run with --dev for an embedded, non-durable cluster)"
                    .to_string(),
            );
        } else if k.brokers.split(',').any(|b| b.trim().is_empty()) {
            errs.push(format!(
                "kafka.brokers {:?} has an empty entry: use host:port[,host:port]",
                k.brokers
            ));
        }
        if !s.webhook_path.starts_with('/') {
            errs.push(format!(
                "server.webhook_path {:?} must start with '/'",
                s.webhook_path
            ));
        }
        // Port 0 asks the OS for a free port, so two of them never clash.
        if s.listen == s.admin_listen && s.listen.port() != 0 {
            errs.push(format!(
                "server.listen and server.admin_listen are both {}: the admin port must differ",
                s.listen
            ));
        }
        if s.max_body_bytes == 0 {
            errs.push("server.max_body_bytes must be above 0".into());
        }
        if s.request_timeout < Duration::from_millis(500) {
            errs.push(format!(
                "server.request_timeout {} is too short: use at least 500ms",
                humantime::format_duration(s.request_timeout)
            ));
        }
        // The delivery report must come back before the HTTP deadline, or a
        // record could land after we already answered 503 (harmless, a
        // duplicate) — or worse, we would answer 503 for every slow write.
        if k.message_timeout + Duration::from_millis(250) > s.request_timeout {
            errs.push(format!(
                "kafka.message_timeout ({}) must be at least 250ms below server.request_timeout ({}): \
                 lower the first or raise the second",
                humantime::format_duration(k.message_timeout),
                humantime::format_duration(s.request_timeout)
            ));
        }
        if k.message_timeout < Duration::from_millis(100) {
            errs.push("kafka.message_timeout must be at least 100ms".into());
        }
        if k.admin_timeout.is_zero() || k.health_interval.is_zero() {
            errs.push("kafka.admin_timeout and kafka.health_interval must be above 0".into());
        }
        for (name, why) in FIXED_PROPERTIES {
            if k.properties.contains_key(*name) {
                errs.push(format!(
                    "kafka.properties.{name:?} cannot be set: {why}; remove it"
                ));
            }
        }
        let t = &self.topics;
        if t.partitions < 1 && t.partitions != -1 {
            errs.push(format!(
                "topics.partitions {} must be at least 1 (or -1 for the broker default)",
                t.partitions
            ));
        }
        if t.replication_factor < 1 && t.replication_factor != -1 {
            errs.push(format!(
                "topics.replication_factor {} must be at least 1 (or -1 for the broker default)",
                t.replication_factor
            ));
        }
        let r = &self.routes;
        if !r.template.contains("{event}") {
            errs.push(format!(
                "routes.template {:?} must contain {{event}}, or every event type shares one topic \
                 (set routes.fallback for that instead)",
                r.template
            ));
        }
        for (what, name) in std::iter::once(("routes.fallback", &r.fallback))
            .chain(r.overrides.values().map(|v| ("routes.overrides", v)))
        {
            if let Err(e) = route::check_topic_name(name) {
                errs.push(format!("{what} topic {name:?}: {e}"));
            }
        }
        for key in r.known.iter().chain(r.overrides.keys()) {
            match RouteKey::parse(key) {
                Ok(k) => {
                    if !r.overrides.contains_key(key) {
                        let topic = route::render_template(&r.template, &k);
                        if let Err(e) = route::check_topic_name(&topic) {
                            errs.push(format!(
                                "routes.template gives topic {topic:?} for {key:?}: {e}"
                            ));
                        }
                    }
                }
                Err(e) => errs.push(format!("routes entry {key:?}: {e}")),
            }
        }
        if let Err(e) = crate::http::access::Access::new(&self.access) {
            errs.push(e);
        }
        let auth_before = errs.len();
        errs.extend(self.auth.problems());
        for f in self.auth.basic_files.iter().chain(&self.auth.api_key_files) {
            if !f.is_file() {
                errs.push(format!(
                    "auth: credential file {} does not exist",
                    f.display()
                ));
            }
        }
        // Reads the files as start-up will: a file without a credential is
        // refused here too, so --check-config catches it.
        if errs.len() == auth_before
            && let Err(e) = crate::http::auth::Auth::new(self.auth.clone())
        {
            errs.push(format!("auth: {e}"));
        }
        match (&self.tls.cert_file, &self.tls.key_file) {
            (Some(c), Some(k)) => {
                for f in [c, k] {
                    if !f.is_file() {
                        errs.push(format!("tls: {} does not exist", f.display()));
                    }
                }
            }
            (None, None) => {}
            _ => errs.push("tls: set both cert_file and key_file, or neither".into()),
        }
        let l = &self.limits;
        if l.max_connections == 0 || l.max_inflight == 0 || l.max_headers == 0 {
            errs.push(
                "limits.max_connections, max_inflight and max_headers must be above 0".into(),
            );
        }
        if l.max_header_bytes < 8192 {
            errs.push(
                "limits.max_header_bytes must be at least 8192 (hyper's minimum buffer)".into(),
            );
        }
        let d = &self.dedup;
        if self.dead_letter.enabled {
            let dl = &self.dead_letter.topic;
            if let Err(e) = route::check_topic_name(dl) {
                errs.push(format!("dead_letter.topic {dl:?}: {e}"));
            }
            // Malformed bodies mixed into a delivery topic or the ledger
            // would reach consumers that expect well-formed events (or
            // corrupt the ledger's lines).
            if d.enabled && *dl == d.ledger_topic {
                errs.push(format!(
                    "dead_letter.topic {dl:?} is also dedup.ledger_topic: give dead letters a topic of their own"
                ));
            }
            if let Ok(router) = Router::from_config(r) {
                let clash = router.routes().iter().find(|x| *x.topic == **dl);
                if let Some(route) = clash {
                    let what = if route.is_fallback {
                        "routes.fallback".to_string()
                    } else {
                        format!("the topic of route {}", route.label)
                    };
                    errs.push(format!(
                        "dead_letter.topic {dl:?} is also {what}: give dead letters a topic of their own"
                    ));
                }
            }
        }
        if d.enabled {
            if d.window < Duration::from_secs(60) {
                errs.push(format!(
                    "dedup.window {} is too short: POPBiLL retries minutes apart; use at least 1m (24h or more is advised)",
                    humantime::format_duration(d.window)
                ));
            }
            if d.max_entries < 1000 {
                errs.push("dedup.max_entries must be at least 1000".into());
            }
            if d.ledger_partitions < 1 {
                errs.push("dedup.ledger_partitions must be at least 1".into());
            }
            if let Err(e) = route::check_topic_name(&d.ledger_topic) {
                errs.push(format!("dedup.ledger_topic {:?}: {e}", d.ledger_topic));
            }
            if Router::from_config(r)
                .map(|router| router.routes().iter().any(|x| *x.topic == *d.ledger_topic))
                .unwrap_or(false)
            {
                errs.push(format!(
                    "dedup.ledger_topic {:?} is also a delivery topic: give the ledger a topic of its own",
                    d.ledger_topic
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }
}

/// Settings that are maps with keys of the user's choosing, and whether an
/// environment variable's `_` stands for a `.` in the key (Kafka property
/// names such as `sasl.password`).
const MAP_SETTINGS: &[(&str, &str, bool)] = &[
    ("kafka", "properties", true),
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
fn apply_env(
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
            split_list(&raw)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_fail_only_for_missing_brokers() {
        let cfg = Config::default();
        let err = cfg.validate().expect_err("no brokers must be an error");
        let text = err.to_string();
        assert!(text.contains("kafka.brokers is not set"), "{text}");
        assert_eq!(text.matches("\n  - ").count(), 1, "{text}");
    }

    #[test]
    fn shipped_config_file_parses_and_documents_every_section() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/popbill-bridge.toml");
        let cfg = Config::load(
            Some(&path),
            env(&[("POPBILL_BRIDGE_KAFKA__BROKERS", "127.0.0.1:9092")]),
        )
        .expect("shipped config loads");
        cfg.validate()
            .expect("shipped config is valid once brokers are set");
        let defaults = Config::default();
        assert_eq!(cfg.server.webhook_path, defaults.server.webhook_path);
        assert_eq!(cfg.routes.known, defaults.routes.known);
    }

    #[test]
    fn env_overrides_file_values_with_typed_values() {
        let cfg = Config::load(
            None,
            env(&[
                ("POPBILL_BRIDGE_KAFKA__BROKERS", "k1:9092,k2:9092"),
                ("POPBILL_BRIDGE_SERVER__MAX_BODY_BYTES", "2048"),
                ("POPBILL_BRIDGE_SERVER__REQUEST_TIMEOUT", "9s"),
                ("POPBILL_BRIDGE_TOPICS__CREATE", "false"),
                ("POPBILL_BRIDGE_KAFKA__PROPERTIES__SASL_PASSWORD", "hunter2"),
                ("POPBILL_BRIDGE_CONFIG", "ignored.toml"),
                ("HOME", "/root"),
            ]),
        )
        .expect("loads");
        assert_eq!(cfg.kafka.brokers, "k1:9092,k2:9092");
        assert_eq!(cfg.server.max_body_bytes, 2048);
        assert_eq!(cfg.server.request_timeout, Duration::from_secs(9));
        assert!(!cfg.topics.create);
        assert_eq!(
            cfg.kafka
                .properties
                .get("sasl.password")
                .map(String::as_str),
            Some("hunter2")
        );
        assert!(
            !format!("{cfg:?}").contains("hunter2"),
            "secret leaked into Debug"
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[server]\nlisten_addr = \"0.0.0.0:1\"\n").expect("write");
        let err = Config::load(Some(&p), env(&[])).expect_err("unknown key");
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    fn brokers() -> (&'static str, &'static str) {
        ("POPBILL_BRIDGE_KAFKA__BROKERS", "k:9092")
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).expect("write");
        (dir, p)
    }

    fn setting<'a>(cfg: &'a Config, name: &str) -> Option<&'a str> {
        cfg.topics.settings.get(name).map(String::as_str)
    }

    #[test]
    fn item5_one_topic_setting_from_file_or_env_keeps_the_other_defaults() {
        let (_d, p) = file("[topics.settings]\n\"retention.ms\" = \"604800000\"\n");
        let cfg = Config::load(Some(&p), env(&[brokers()])).expect("loads");
        assert_eq!(setting(&cfg, "min.insync.replicas"), Some("2"));
        assert_eq!(setting(&cfg, "retention.ms"), Some("604800000"));

        let cfg = Config::load(
            None,
            env(&[
                brokers(),
                ("POPBILL_BRIDGE_TOPICS__SETTINGS__RETENTION_MS", "1000"),
            ]),
        )
        .expect("loads");
        assert_eq!(setting(&cfg, "min.insync.replicas"), Some("2"));
        assert_eq!(setting(&cfg, "retention.ms"), Some("1000"));

        // A default is changed by naming it with another value.
        let (_d, p) = file("[topics.settings]\n\"min.insync.replicas\" = \"1\"\n");
        let cfg = Config::load(Some(&p), env(&[brokers()])).expect("loads");
        assert_eq!(setting(&cfg, "min.insync.replicas"), Some("1"));
        let cfg = Config::load(
            Some(&p),
            env(&[
                brokers(),
                ("POPBILL_BRIDGE_TOPICS__SETTINGS__MIN_INSYNC_REPLICAS", "3"),
            ]),
        )
        .expect("loads");
        assert_eq!(setting(&cfg, "min.insync.replicas"), Some("3"));
    }

    #[test]
    fn item5_a_dead_letter_topic_shared_with_the_ledger_or_a_route_is_refused() {
        let base = || {
            let mut c = Config::default();
            c.kafka.brokers = "k:9092".into();
            c.routes
                .overrides
                .insert("X.Y:Z".into(), "custom.topic".into());
            c
        };
        base().validate().expect("the defaults are valid");
        for (topic, needle) in [
            ("popbill.bridge.ledger", "dedup.ledger_topic"),
            ("popbill.unrouted", "routes.fallback"),
            ("popbill.taxinvoice.state.issue", "TAXINVOICE.STATE:Issue"),
            ("custom.topic", "X.Y:Z"),
        ] {
            let mut c = base();
            c.dead_letter.topic = topic.into();
            let text = c.validate().expect_err(topic).to_string();
            assert!(
                text.contains("dead_letter.topic") && text.contains(needle),
                "{topic}: {text}"
            );
        }
        // Turned off, the dead-letter topic is never written: no clash.
        let mut c = base();
        c.dead_letter.enabled = false;
        c.dead_letter.topic = "popbill.unrouted".into();
        c.validate().expect("valid");
    }

    #[test]
    fn item10_env_values_are_typed_by_the_setting_they_set() {
        let cfg = Config::load(
            None,
            env(&[
                brokers(),
                ("POPBILL_BRIDGE_AUTH__API_KEYS", "123456"),
                ("POPBILL_BRIDGE_AUTH__BASIC", "popbill:1234,other:true"),
                ("POPBILL_BRIDGE_AUTH__API_KEY_FILES", "/run/secrets/keys"),
                ("POPBILL_BRIDGE_AUTH__BASIC_FILES", "/run/a, /run/b"),
                (
                    "POPBILL_BRIDGE_ACCESS__TRUSTED_PROXIES",
                    r#"["10.0.0.0/8", "::1"]"#,
                ),
                ("POPBILL_BRIDGE_ACCESS__ALLOW", "popbill,10.0.0.0/8"),
                ("POPBILL_BRIDGE_ROUTES__KNOWN", "A.B:C"),
                ("POPBILL_BRIDGE_KAFKA__CLIENT_ID", "12345"),
                ("POPBILL_BRIDGE_DEAD_LETTER__TOPIC", "true"),
                ("POPBILL_BRIDGE_SERVER__MAX_BODY_BYTES", "2048"),
                ("POPBILL_BRIDGE_TOPICS__PARTITIONS", "-1"),
                ("POPBILL_BRIDGE_DEDUP__ENABLED", "false"),
                ("POPBILL_BRIDGE_TLS__CERT_FILE", "/tls/crt"),
            ]),
        )
        .expect("loads");
        assert_eq!(cfg.auth.api_keys, vec!["123456"]);
        assert_eq!(cfg.auth.basic, vec!["popbill:1234", "other:true"]);
        assert_eq!(
            cfg.auth.api_key_files,
            vec![PathBuf::from("/run/secrets/keys")]
        );
        assert_eq!(
            cfg.auth.basic_files,
            vec![PathBuf::from("/run/a"), PathBuf::from("/run/b")]
        );
        assert_eq!(cfg.access.allow, vec!["popbill", "10.0.0.0/8"]);
        assert_eq!(cfg.access.trusted_proxies, vec!["10.0.0.0/8", "::1"]);
        assert_eq!(cfg.routes.known, vec!["A.B:C"]);
        assert_eq!(cfg.kafka.client_id, "12345");
        assert_eq!(cfg.dead_letter.topic, "true");
        assert_eq!(cfg.server.max_body_bytes, 2048);
        assert_eq!(cfg.topics.partitions, -1);
        assert!(!cfg.dedup.enabled);
        assert_eq!(cfg.tls.cert_file, Some(PathBuf::from("/tls/crt")));
    }

    #[test]
    fn item10_an_env_value_that_does_not_fit_its_setting_names_the_variable() {
        for (name, value) in [
            ("POPBILL_BRIDGE_SERVER__MAX_BODY_BYTES", "lots"),
            ("POPBILL_BRIDGE_TOPICS__CREATE", "yes-please"),
            ("POPBILL_BRIDGE_SERVER__LISTN", "0.0.0.0:1"),
            ("POPBILL_BRIDGE_KAFKA__PROPERTIES", "x"),
            ("POPBILL_BRIDGE_AUTH__API_KEYS", "[1, 2]"),
        ] {
            let err = Config::load(None, env(&[brokers(), (name, value)]))
                .expect_err(name)
                .to_string();
            assert!(err.contains(name), "{name}: {err}");
            assert!(!err.contains(value), "{name}: value printed: {err}");
        }
    }

    #[test]
    fn item7_an_empty_credential_or_list_entry_is_refused_not_ignored() {
        for (name, value) in [
            ("POPBILL_BRIDGE_AUTH__API_KEYS", ""),
            ("POPBILL_BRIDGE_AUTH__API_KEYS", "k1,,k2"),
            ("POPBILL_BRIDGE_AUTH__BASIC", ""),
            ("POPBILL_BRIDGE_AUTH__API_KEY_FILES", ""),
            ("POPBILL_BRIDGE_ACCESS__ALLOW", ""),
        ] {
            let loaded = Config::load(None, env(&[brokers(), (name, value)]));
            assert!(
                loaded.is_err() || loaded.is_ok_and(|c| c.validate().is_err()),
                "{name}={value:?} was accepted"
            );
        }
        for text in [
            "[auth]\napi_keys = [\"\"]\n",
            "[auth]\napi_keys = \"\"\n",
            "[auth]\napi_keys = [\"k\", \" \"]\n",
            "[auth]\nbasic = [\"popbill:\"]\n",
            "[access]\nallow = \"\"\n",
        ] {
            let (_d, p) = file(text);
            let loaded = Config::load(Some(&p), env(&[brokers()]));
            assert!(
                loaded.is_err() || loaded.is_ok_and(|c| c.validate().is_err()),
                "{text:?} was accepted"
            );
        }
    }

    #[test]
    fn item9_kafka_client_errors_name_the_property_and_never_its_value() {
        let with = |props: &[(&str, &str)]| KafkaConfig {
            brokers: "k:9092".into(),
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..KafkaConfig::default()
        };
        for (props, property, secret) in [
            (
                &[("sasl.passwrd", "hunter2"), ("sasl.username", "u")][..],
                "sasl.passwrd",
                "hunter2",
            ),
            (&[("linger.ms", "abc")][..], "linger.ms", "abc"),
            // Only librdkafka's client creation sees this combination.
            (
                &[("max.in.flight.requests.per.connection", "77")][..],
                "max.in.flight",
                "77",
            ),
        ] {
            let err = with(props).check_client().expect_err(property);
            assert!(err.contains(property), "{err}");
            assert!(!err.contains(secret), "value printed: {err}");
        }
        with(&[("linger.ms", "5"), ("security.protocol", "PLAINTEXT")])
            .check_client()
            .expect("a valid client configuration");
    }

    #[test]
    fn item9_redaction_scrubs_every_value_and_short_ones_only_where_they_stand_alone() {
        let k = KafkaConfig {
            properties: BTreeMap::from([
                ("a".to_string(), "s3cr3t-value".to_string()),
                ("b".to_string(), "1".to_string()),
            ]),
            ..KafkaConfig::default()
        };
        assert_eq!(
            k.redact("x=\"s3cr3t-value\" y=1 range 10..100"),
            "x=\"<redacted>\" y=<redacted> range 10..100"
        );
    }

    #[test]
    fn validation_reports_every_problem_with_a_fix() {
        let mut cfg = Config::default();
        cfg.kafka.brokers = "a:1".into();
        cfg.kafka.message_timeout = Duration::from_secs(10);
        cfg.kafka.properties.insert("acks".into(), "1".into());
        cfg.routes.fallback = "__consumer_offsets".into();
        cfg.routes.known.push("NOCOLON".into());
        cfg.server.admin_listen = cfg.server.listen;
        let text = cfg.validate().expect_err("invalid").to_string();
        for needle in [
            "kafka.message_timeout",
            "acks is always",
            "routes.fallback",
            "NOCOLON",
            "admin port must differ",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }
}
