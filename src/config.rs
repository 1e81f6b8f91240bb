//! The one typed configuration: defaults, then the TOML file, then
//! `POPBILL_BRIDGE_*` environment variables, then CLI flags; validated once at
//! start-up so a bad setting stops the process with a message that says how to
//! fix it instead of failing on the first delivery.
//!
//! Every setting is documented in `config/popbill-bridge.toml`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::dedup::DedupConfig;
pub use crate::http::access::AccessConfig;
pub use crate::http::auth::AuthConfig;
pub use crate::http::server::LimitsConfig;
pub use crate::http::tls::TlsConfig;
pub use crate::http::{OkBody, ServerConfig};
pub use crate::kafka::KafkaConfig;
pub use crate::kafka::record::CloudEventsConfig;
pub use crate::kafka::topics::TopicsConfig;
use crate::route::Router;
pub use crate::route::{DeadLetterConfig, RoutesConfig};
pub use crate::telemetry::logging::{LogConfig, LogFormat};

/// Prefix of the environment variables that override settings, e.g.
/// `POPBILL_BRIDGE_KAFKA__BROKERS` for `kafka.brokers`.
pub(crate) const ENV_PREFIX: &str = "POPBILL_BRIDGE_";

/// Start of the warning about a bridge that checks no sender.
pub(crate) const OPEN_TO_ANYONE: &str = "neither credentials nor a source allow-list is configured";

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
    /// `--dev`: one mock broker, so production replication settings would
    /// make every topic fail. Returns every topic the bridge will use, with
    /// its partitions, for the mock cluster to create.
    pub fn prepare_for_dev(&mut self) -> Vec<(String, i32)> {
        self.topics.replication_factor = 1;
        self.topics.settings.clear();
        self.topics_in_use()
    }

    /// Every topic the bridge will write, with the partitions it creates
    /// it with: the routes (the fallback and the dead-letter topic among
    /// them) and the ledger when duplicate detection is on.
    pub fn topics_in_use(&self) -> Vec<(String, i32)> {
        let partitions = self.topics.partitions.max(1);
        let mut topics = Vec::new();
        // The routes include the fallback and the dead-letter topic.
        if let Ok(router) = Router::new(&self.routes, &self.dead_letter) {
            topics.extend(
                router
                    .routes()
                    .iter()
                    .map(|r| (r.topic.to_string(), partitions)),
            );
        }
        if self.dedup.enabled {
            topics.push((
                self.dedup.ledger_topic.clone(),
                self.dedup.ledger_partitions,
            ));
        }
        topics
    }

    /// What bounds the size of a record: an accepted body and headers.
    fn record_bounds(&self) -> crate::kafka::publish::RecordBounds {
        crate::kafka::publish::RecordBounds {
            max_body_bytes: self.server.max_body_bytes,
            max_header_bytes: self.limits.max_header_bytes,
            max_headers: self.limits.max_headers,
        }
    }

    /// The largest record an accepted delivery can make: what the producer
    /// and every topic must allow.
    pub fn max_record_bytes(&self) -> usize {
        crate::kafka::publish::max_record_bytes(&self.record_bounds(), &self.cloudevents)
    }

    /// What the topics' settings must allow, from the sections that decide
    /// it (record size, durability, ledger retention).
    pub(crate) fn topic_needs(&self) -> crate::kafka::topics::Needs {
        crate::kafka::topics::Needs {
            record_bytes: self.max_record_bytes(),
            max_body_bytes: self.server.max_body_bytes,
            max_header_bytes: self.limits.max_header_bytes,
            min_insync_replicas: self
                .topics
                .settings
                .get("min.insync.replicas")
                .and_then(|v| v.trim().parse().ok()),
            dedup_window: self.dedup.enabled.then_some(self.dedup.window),
        }
    }

    /// Reads the file (if any) and the environment, in that order of
    /// precedence below the CLI flags the caller applies afterwards.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (table, shown) = Config::table(path, env)?;
        Config::from_table(table, shown)
    }

    /// As [`Config::load`], for `--dev`: the listeners default to loopback
    /// (the embedded Kafka is this machine's alone). An address the file or
    /// the environment sets is kept, even one equal to the usual default
    /// (`0.0.0.0:8080` in a container), and a flag applied afterwards wins.
    pub fn load_dev(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (mut table, shown) = Config::table(path, env)?;
        let usual = ServerConfig::default();
        let loopback = |a: std::net::SocketAddr| {
            toml::Value::String(std::net::SocketAddr::from(([127, 0, 0, 1], a.port())).to_string())
        };
        if let toml::Value::Table(server) = table
            .entry("server")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            server
                .entry("listen")
                .or_insert_with(|| loopback(usual.listen));
            server
                .entry("admin_listen")
                .or_insert_with(|| loopback(usual.admin_listen));
        }
        Config::from_table(table, shown)
    }

    /// The file's settings with the environment's laid over them, and how
    /// to name where they came from.
    fn table(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(toml::Table, String), ConfigError> {
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
        Ok((table, shown))
    }

    fn from_table(table: toml::Table, shown: String) -> Result<Config, ConfigError> {
        let mut config = Config::parse_table(table, shown)?;
        // The values of kafka.secret_files become properties here, once:
        // every later check and client sees them, and every redaction
        // hides them.
        let unread = crate::kafka::secret_files::read_into(&mut config.kafka);
        if unread.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(unread))
        }
    }

    fn parse_table(table: toml::Table, shown: String) -> Result<Config, ConfigError> {
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

    /// The checks that span sections; each section checks itself when its
    /// part is built (see [`crate::bridge`]).
    pub(crate) fn check_across(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let (s, k) = (&self.server, &self.kafka);
        // The delivery report must come back before the HTTP deadline, or a
        // record could land after we already answered 503 (harmless, a
        // duplicate) — or worse, we would answer 503 for every slow write.
        // A delivery may first wait for an in-flight slot, so that wait
        // counts too.
        let l = &self.limits;
        if l.inflight_wait + k.message_timeout + Duration::from_millis(250) > s.request_timeout {
            errs.push(format!(
                "limits.inflight_wait ({}) plus kafka.message_timeout ({}) must be at least 250ms \
                 below server.request_timeout ({}): lower the first two or raise the last",
                humantime::format_duration(l.inflight_wait),
                humantime::format_duration(k.message_timeout),
                humantime::format_duration(s.request_timeout)
            ));
        }
        if l.max_body_buffer_bytes < s.max_body_bytes {
            errs.push(format!(
                "limits.max_body_buffer_bytes ({}) must be at least server.max_body_bytes ({}): \
                 a body of the largest size allowed could never be received; raise the first \
                 or lower the second",
                l.max_body_buffer_bytes, s.max_body_bytes
            ));
        }
        errs
    }
}

mod env;

use env::apply_env;

#[cfg(test)]
pub(crate) mod tests;
