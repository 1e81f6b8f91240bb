//! The HTTP edge: listening, TLS, who may deliver, and the answers.
//!
//! - [`server`]: accepts connections and serves HTTP/1.1 within limits;
//! - [`tls`]: the optional TLS acceptor, reloaded when its files change;
//! - [`access`]: the source allow-list and trusted proxies;
//! - [`auth`]: Basic and API-key credentials, with rotation;
//! - [`answer`]: the responses POPBiLL sees;
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz` on their own port.

pub mod access;
pub mod admin;
pub mod answer;
pub mod auth;
pub mod server;
pub mod tls;
