//! Shared test helpers, by kind:
//!
//! - [`bridge`]: test configurations, a bridge started in-process (on a
//!   real broker or on librdkafka's mock cluster), the binary as a process;
//! - [`http`]: the HTTP client, requests written by hand, a TLS client;
//! - [`kafka`]: the real broker ([`real_broker`], [`kafka_sh_broker`],
//!   held shared or alone), reading topics back, creating and writing to
//!   them;
//! - [`samples`]: the sample deliveries of `tests/fixtures`;
//! - [`metrics`]: reading the bridge's Prometheus text.

pub mod bridge;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod samples;

pub use bridge::*;
pub use http::*;
pub use kafka::*;
pub use metrics::*;
pub use samples::*;
