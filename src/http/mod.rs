//! The HTTP edge: listening, TLS, who may deliver, and the answers.
//!
//! - [`server`]: accepts connections and serves HTTP/1.1 within limits;
//! - [`tls`]: the optional TLS acceptor, reloaded when its files change;
//! - [`access`]: the source allow-list and trusted proxies;
//! - [`auth`]: Basic and API-key credentials, with rotation;
//! - [`answer`]: the responses POPBiLL sees;
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz` on their own port.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

pub mod access;
pub mod admin;
pub mod answer;
pub mod auth;
pub mod reload;
pub mod server;
pub mod tls;

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
    pub(crate) retry_after: Duration,
    /// Body of the success answer: `"plain"` sends `OK`, `"json"` sends
    /// `{"result":"OK"}`. POPBiLL accepts both.
    pub(crate) ok_body: OkBody,
    /// How long to keep serving after SIGTERM with /readyz failing, so
    /// load balancers stop sending before the listener closes.
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
    /// Budget for in-flight deliveries to finish and the producer to flush
    /// after the listener closed.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl ServerConfig {
    /// Every problem of this section, each saying what to change.
    pub fn check(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if !self.webhook_path.starts_with('/') {
            errs.push(format!(
                "server.webhook_path {:?} must start with '/'",
                self.webhook_path
            ));
        }
        // Port 0 asks the OS for a free port, so two of them never clash.
        if self.listen == self.admin_listen && self.listen.port() != 0 {
            errs.push(format!(
                "server.listen and server.admin_listen are both {}: the admin port must differ",
                self.listen
            ));
        }
        if self.max_body_bytes == 0 {
            errs.push("server.max_body_bytes must be above 0".into());
        }
        if self.request_timeout < Duration::from_millis(500) {
            errs.push(format!(
                "server.request_timeout {} is too short: use at least 500ms",
                humantime::format_duration(self.request_timeout)
            ));
        }
        errs
    }
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
