//! What the bridge tells its operators: metrics, log lines, and the events
//! that produce both.
//!
//! - [`metrics`]: every Prometheus metric, in one registry per bridge;
//! - [`events`]: one function per observable event, logging and counting
//!   together so the two never drift;
//! - [`logging`]: the tracing subscriber and the throttle for librdkafka's
//!   own lines.

#[cfg(test)]
pub(crate) mod captured_log;
pub mod events;
/// The label enums, at their old path (they live in [`crate::labels`]).
pub use crate::labels;
pub mod logging;
pub mod metrics;

/// `text` cut to at most `max` bytes, at a character boundary: for what a
/// sender chose (a MID, an event type) in a log line or a ledger line, so
/// that no sender can make one as long as its header limit allows.
pub(crate) fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
