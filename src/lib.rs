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
//! - [`kafka`]: what every client shares ([`kafka::client`]), the
//!   producer and its records ([`kafka::publish`], [`kafka::record`]), the
//!   transactions that write a record and its ledger line together
//!   ([`kafka::transactions`]), the topics ([`kafka::topics`]), the mock
//!   cluster of `--dev` ([`kafka::mock`]);
//! - [`receipt`]: what a delivery report proves (a receipt carries an
//!   offset; a report without one is unconfirmed);
//! - [`error`]: every way a delivery falls short of `OK`, each with its
//!   status; [`http::answer`] turns it into the answer POPBiLL gets;
//! - [`labels`]: every bounded label value (outcomes, reasons);
//! - [`telemetry`]: every metric ([`telemetry::metrics`]), every observable
//!   event ([`telemetry::events`]), logging ([`telemetry::logging`]);
//! - [`health`]: readiness, from Kafka, the topics and the ledger;
//! - [`bridge`]: builds every part once (each checking its own
//!   configuration section), then runs them; [`shutdown`] stops them in
//!   named phases, each background task listening on a [`signal`];
//! - [`config`], [`deserialize`] and [`cli`]: where settings come from and
//!   the checks that span sections;
//! - [`commands`]: `send`, `redrive` and `asyncapi`, beside serving;
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
pub(crate) mod file_digest;
pub mod health;
pub mod http;
pub mod kafka;
pub mod labels;
pub mod receipt;
pub mod route;
pub mod shutdown;
pub mod signal;
pub mod telemetry;
pub mod webhook;

pub use bridge::{RunningBridge, StartError, start};
pub use shutdown::ShutdownReport;

/// No part of `src/` imports a part that imports it back (a test).
#[cfg(test)]
mod layering_tests;
