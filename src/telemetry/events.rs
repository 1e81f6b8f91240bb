//! How each delivery ended: one function per outcome, each emitting the
//! delivery's single log line and its metrics together so the two never
//! drift apart. Log fields never include credentials or the body.

use std::time::Duration;

use hyper::HeaderMap;
use tracing::{info, warn};

use crate::delivery::{Delivery, PB_WEBHOOK_MID};
use crate::error::{BridgeError, Kind};
use crate::kafka::publish::Receipt;
use crate::route::Route;
use crate::telemetry::metrics::{Metrics, Outcome};

pub fn acknowledged(
    metrics: &Metrics,
    route: &Route,
    d: &Delivery<'_>,
    id: &str,
    receipt: Receipt,
    latency: Duration,
) {
    metrics.route(route).get(Outcome::Acknowledged).inc();
    info!(
        target: "popbill_bridge::delivery",
        outcome = Outcome::Acknowledged.as_str(),
        mid = id,
        webhook_type = d.webhook_type,
        event_type = d.event_type.as_deref().unwrap_or(""),
        topic = &*route.topic,
        partition = receipt.partition,
        offset = receipt.offset,
        latency_ms = millis(latency),
        "delivery acknowledged"
    );
}

/// A copy of an event already in Kafka: acknowledged, not published.
/// `waited` tells whether it waited for a first copy still in flight.
pub fn duplicate(
    metrics: &Metrics,
    route: &Route,
    d: &Delivery<'_>,
    id: &str,
    waited: bool,
    latency: Duration,
) {
    metrics.route(route).get(Outcome::Duplicate).inc();
    info!(
        target: "popbill_bridge::delivery",
        outcome = Outcome::Duplicate.as_str(),
        mid = id,
        webhook_type = d.webhook_type,
        event_type = d.event_type.as_deref().unwrap_or(""),
        topic = &*route.topic,
        waited,
        latency_ms = millis(latency),
        "delivery is a duplicate: acknowledged without a second record"
    );
}

pub fn failed(
    metrics: &Metrics,
    route: &Route,
    d: &Delivery<'_>,
    id: &str,
    error: &BridgeError,
    latency: Duration,
) {
    metrics.route(route).get(Outcome::Failed).inc();
    if let Kind::Failed(reason) = error.kind() {
        metrics.publish_failure(reason).inc();
    }
    warn!(
        target: "popbill_bridge::delivery",
        outcome = Outcome::Failed.as_str(),
        mid = id,
        webhook_type = d.webhook_type,
        event_type = d.event_type.as_deref().unwrap_or(""),
        topic = &*route.topic,
        status = error.status().as_u16(),
        error = %error,
        cause = error_source(error),
        latency_ms = millis(latency),
        "delivery failed, answered 503 so POPBiLL retries"
    );
}

/// A request refused before it could be published. `headers` gives the MID
/// for the log line when the request got that far.
pub fn rejected(
    metrics: &Metrics,
    headers: Option<&HeaderMap>,
    error: &BridgeError,
    latency: Duration,
) {
    metrics.unrouted().get(Outcome::Rejected).inc();
    let reason = match error.kind() {
        Kind::Rejected(r) => {
            metrics.rejection(r).inc();
            r.as_str()
        }
        Kind::Failed(f) => f.as_str(),
    };
    let mid = mid_of(headers);
    warn!(
        target: "popbill_bridge::delivery",
        outcome = Outcome::Rejected.as_str(),
        mid,
        reason,
        status = error.status().as_u16(),
        error = %error,
        cause = error_source(error),
        latency_ms = millis(latency),
        "delivery rejected"
    );
}

/// A malformed delivery from a verified sender, to be kept in the
/// dead-letter topic instead of refused. Counted as a rejection with its
/// reason (the delivery itself is still broken); its publish is then
/// logged like any other, and `dead_letters_total` counts it once written.
pub fn dead_lettered(metrics: &Metrics, headers: &HeaderMap, error: &BridgeError) {
    let Some(reason) = error.reject_reason() else {
        return;
    };
    metrics.rejection(reason).inc();
    warn!(
        target: "popbill_bridge::delivery",
        mid = mid_of(Some(headers)),
        reason = reason.as_str(),
        error = %error,
        cause = error_source(error),
        "malformed delivery from a verified sender: writing it to the dead-letter topic"
    );
}

fn mid_of(headers: Option<&HeaderMap>) -> &str {
    headers
        .and_then(|h| h.get(&PB_WEBHOOK_MID))
        .and_then(|v| v.to_str().ok())
        .map(|s| &s[..s.len().min(100)])
        .unwrap_or("")
}

fn error_source(e: &BridgeError) -> String {
    std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Milliseconds with microsecond precision, for readable log lines.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}
