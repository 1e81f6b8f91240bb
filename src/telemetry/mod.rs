//! What the bridge tells its operators: metrics, log lines, and the events
//! that produce both.
//!
//! - [`metrics`]: every Prometheus metric, in one registry per bridge;
//! - [`events`]: one function per observable event, logging and counting
//!   together so the two never drift;
//! - [`logging`]: the tracing subscriber and the throttle for librdkafka's
//!   own lines.

pub mod events;
pub mod labels;
pub mod logging;
pub mod metrics;
