//! popbill-bridge receives POPBiLL webhook deliveries and publishes each to
//! Kafka, answering `OK` only once Kafka has confirmed the write.
//!
//! The data path reads top to bottom, one module a step, strung together
//! by [`webhook`]:
//!
//! request ([`http`]) → [`delivery`] → [`route`] → duplicates ([`dedup`])
//! → publish ([`kafka`]) → answer ([`http::answer`], [`error`]).
//!
//! - [`webhook`]: the endpoint; applies the deadline and `finish`es each
//!   delivery into its log line, metrics and answer;
//! - [`http`]: the listeners ([`http::server`], [`http::tls`]), who may
//!   deliver ([`http::access`], [`http::auth`], re-read by
//!   [`http::reload`]), the answers, and the admin port ([`http::admin`]);
//! - [`delivery`]: request → parsed, checked delivery;
//! - [`route`]: delivery → topic, from configuration only;
//! - [`dedup`]: is this event already in Kafka? Identities
//!   ([`dedup::identity`]), the memory, copies in flight, and the ledger
//!   topic every replica shares ([`dedup::ledger`]);
//! - [`kafka`]: the producer and its records ([`kafka::publish`],
//!   [`kafka::record`]), the topics ([`kafka::topics`]), the mock cluster
//!   of `--dev` ([`kafka::mock`]);
//! - [`error`]: every way a delivery falls short of `OK`, each carrying its
//!   HTTP answer;
//! - [`telemetry`]: every metric ([`telemetry::metrics`]), every observable
//!   event ([`telemetry::events`]) and its labels ([`telemetry::labels`]),
//!   logging ([`telemetry::logging`]);
//! - [`health`]: readiness, from Kafka, the topics and the ledger;
//! - [`bridge`]: builds every part once (each checking its own
//!   configuration section), then runs them; [`shutdown`] stops them in
//!   named phases;
//! - [`config`], [`deserialize`] and [`cli`]: where settings come from and
//!   the checks that span sections;
//! - [`commands`]: `send` and `asyncapi`, beside serving;
//! - [`allocator`]: the allocator settings the binary starts with.

pub mod allocator;
pub mod bridge;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dedup;
pub mod delivery;
pub mod deserialize;
pub mod error;
pub mod health;
pub mod http;
pub mod kafka;
pub mod route;
pub mod shutdown;
pub mod telemetry;
pub mod webhook;

pub use bridge::{RunningBridge, StartError, start};
pub use shutdown::ShutdownReport;
