//! Every observable event, one function each: the function writes the log
//! line and moves the metrics together, so the two never drift apart.
//! Deliveries get exactly one line each (target `popbill_bridge::delivery`);
//! the HTTP layer, the duplicate memory and the ledger have theirs. Log
//! fields never include credentials or the body.

use std::time::Duration;

use hyper::HeaderMap;
use tracing::{Level, debug, info, warn};

use crate::delivery::{Delivery, PB_WEBHOOK_MID};
use crate::error::{BridgeError, Kind};
use crate::labels::{HttpErrorKind, Outcome, RecordWriter};
use crate::receipt::{Receipt, Unconfirmed};
use crate::route::Route;
use crate::telemetry::logging::{self, Fields};
use crate::telemetry::metrics::Metrics;

pub fn acknowledged(
    metrics: &Metrics,
    route: &Route,
    d: &Delivery<'_>,
    id: &str,
    receipt: Receipt,
    latency: Duration,
) {
    metrics.route(route).get(Outcome::Acknowledged).inc();
    logging::delivery_line(Level::INFO, "delivery acknowledged", |f| {
        delivery_fields(f, Outcome::Acknowledged, id, d, route)
            .i32("partition", receipt.partition())
            .i64("offset", receipt.offset())
            .millis("latency_ms", micros(latency));
    });
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
    logging::delivery_line(
        Level::INFO,
        "delivery is a duplicate: acknowledged without a second record",
        |f| {
            delivery_fields(f, Outcome::Duplicate, id, d, route)
                .bool("waited", waited)
                .millis("latency_ms", micros(latency));
        },
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
    logging::delivery_line(
        Level::WARN,
        "delivery failed, answered 503 so POPBiLL retries",
        |f| {
            delivery_fields(f, Outcome::Failed, id, d, route);
            error_fields(f, error).millis("latency_ms", micros(latency));
        },
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
    logging::delivery_line(Level::WARN, "delivery rejected", |f| {
        f.str("outcome", Outcome::Rejected.as_str())
            .str("mid", mid_of(headers))
            .str("reason", reason);
        error_fields(f, error).millis("latency_ms", micros(latency));
    });
}

/// A malformed delivery from a verified sender, to be kept in the
/// dead-letter topic instead of refused. Counted as a rejection with its
/// reason (the delivery itself is still broken); its publish is then
/// logged like any other, and `dead_letters_total` counts it once written.
pub(crate) fn dead_lettered(metrics: &Metrics, headers: &HeaderMap, error: &BridgeError) {
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

/// A dead-lettered delivery Kafka confirmed: counted once written.
pub(crate) fn dead_letter_written(metrics: &Metrics, reason: crate::labels::RejectReason) {
    metrics.dead_letter(reason).inc();
}

// --- the HTTP layer ---------------------------------------------------

/// A connection closed at accept because its source is not on
/// `access.allow`; counted with the other refusals of the HTTP layer.
pub(crate) fn refused_at_accept(metrics: &Metrics, listener: &str, peer: std::net::SocketAddr) {
    let kind = HttpErrorKind::ForbiddenAtAccept;
    metrics.http_error(kind).inc();
    info!(listener, %peer, kind = kind.as_str(), "connection closed at accept: source address is not on access.allow");
}

/// A delivery found every `limits.max_inflight` slot taken and waited
/// (`got` tells whether a slot freed up in time; if not, it is rejected as
/// overloaded and logged as such). Debug only: under overload this is
/// every delivery, and the rejection has its own line.
pub(crate) fn waited_for_slot(metrics: &Metrics, waited: Duration, got: bool) {
    metrics.slot_waits.inc();
    debug!(
        waited_ms = millis(waited),
        got, "all in-flight slots taken: waited for one"
    );
}

/// A connection closed at once because `limits.max_connections` are open:
/// the cheapest answer to a flood; POPBiLL retries a refused connection.
pub(crate) fn connection_limit_reached(
    metrics: &Metrics,
    listener: &str,
    peer: std::net::SocketAddr,
) {
    metrics.connections_rejected.inc();
    debug!(listener, %peer, "connection limit reached; closing");
}

pub(crate) fn tls_handshake_failed(metrics: &Metrics, listener: &str, peer: std::net::SocketAddr) {
    metrics.tls_handshake_failures.inc();
    debug!(listener, %peer, "TLS handshake failed or timed out");
}

/// A request refused (431, 400), or a connection dropped, before the
/// handler saw a request: by hyper, or by the header count the HTTP layer
/// applies in its place (`http::server`).
pub(crate) fn http_refused(
    metrics: &Metrics,
    listener: &str,
    peer: std::net::SocketAddr,
    kind: HttpErrorKind,
    error: &dyn std::fmt::Display,
) {
    metrics.http_error(kind).inc();
    match kind {
        HttpErrorKind::Io | HttpErrorKind::Canceled => {
            debug!(listener, %peer, error = %error, "connection ended")
        }
        _ => {
            info!(listener, %peer, kind = kind.as_str(), error = %error, "HTTP request refused before reaching the handler")
        }
    }
}

// --- Kafka ------------------------------------------------------------

/// A delivery report said "delivered" without an offset: librdkafka's
/// implicit acknowledgement, which can stand for a record that was never
/// stored. Never trusted: the writer treats it as a failure (a delivery is
/// answered 503; a ledger batch counts as not written).
pub(crate) fn unconfirmed_report(
    metrics: &Metrics,
    writer: RecordWriter,
    topic: &str,
    report: Unconfirmed,
) {
    metrics.unconfirmed_report(writer).inc();
    warn!(
        writer = writer.as_str(),
        topic,
        partition = report.partition,
        offset = report.offset,
        "Kafka reported a write as delivered without an offset (librdkafka's implicit acknowledgement): not trusted, treated as not written"
    );
}

/// Kafka stopped answering metadata requests (said on the change only:
/// while Kafka is down this would repeat every round).
pub(crate) fn kafka_unreachable(metrics: &Metrics, error: &dyn std::fmt::Display) {
    metrics.kafka_up.set(0);
    warn!(error = %error, "Kafka is not reachable (metadata request failed): readiness fails until it is");
}

/// The bridge's own handshake with a broker librdkafka could not verify
/// says why (`why`, naming the fix): said when it changes.
pub(crate) fn kafka_certificate_refused(why: &str) {
    warn!(reason = why, "Kafka's certificate is refused");
}

/// The authorizer refused a reader's consumer group (`why` names the
/// ACL): said once, listed on `/readyz` from then on.
pub(crate) fn kafka_group_refused(group: &str, why: &str) {
    warn!(
        group,
        reason = why,
        "Kafka refuses the bridge its consumer group"
    );
}

/// A file of `kafka.secret_files` changed: the bridge restarts in order
/// to make its Kafka clients with the new value.
pub(crate) fn kafka_secret_changed(property: &str, file: &std::path::Path) {
    warn!(
        property,
        file = %file.display(),
        "a Kafka secret file changed: librdkafka takes credentials only when a client is made, so the bridge stops in order and exits with status 4 to be started again with it"
    );
}

/// Kafka answers again; `suppressed` librdkafka lines were held back
/// since the last summary.
pub(crate) fn kafka_reachable(metrics: &Metrics, suppressed: u64) {
    metrics.kafka_up.set(1);
    info!(suppressed_kafka_lines = suppressed, "Kafka is reachable");
}

/// A bout of librdkafka trouble lines ended while Kafka stayed reachable.
pub(crate) fn kafka_trouble_over(suppressed: u64) {
    info!(
        suppressed_kafka_lines = suppressed,
        "Kafka client trouble is over"
    );
}

// --- duplicates ---------------------------------------------------------

/// A delivery claims an identity remembered with another body: a forged
/// or corrupted copy, or the genuine event after a forgery. It is published.
pub(crate) fn dedup_conflict(
    metrics: &Metrics,
    id: &str,
    identity: u128,
    remembered: u64,
    received: u64,
) {
    metrics.dedup_conflicts.inc();
    warn!(
        ce_id = logged(id),
        identity = %format_args!("{identity:032x}"),
        remembered_body = %format_args!("{remembered:016x}"),
        received_body = %format_args!("{received:016x}"),
        "identity already published with a different body: publishing this delivery, not treating it as a duplicate"
    );
}

/// Ledger records Kafka confirmed, `events` identities in all.
pub(crate) fn ledger_written(metrics: &Metrics, events: u64) {
    metrics.dedup_ledger_writes.inc_by(events);
}

/// Identities that did not reach the ledger: later copies of those events
/// would be published again (a duplicate, never a loss).
pub(crate) fn ledger_write_failed(metrics: &Metrics, events: u64, error: &str) {
    metrics.dedup_ledger_write_failures.inc_by(events);
    warn!(
        events,
        error,
        "could not record events in the duplicates ledger; later copies of them would be published again"
    );
}

/// The ledger was read to the end it had at start-up: the replica knows
/// what every other replica published, and may be ready.
pub(crate) fn ledger_caught_up(metrics: &Metrics, ledger: &str, records: u64, took: Duration) {
    metrics.dedup_ledger_caught_up.set(1);
    info!(
        ledger,
        records,
        seconds = took.as_secs_f64(),
        "duplicates ledger caught up; ready"
    );
}

/// Kafka refused to let this replica read the ledger (`why` names the
/// right to grant): not ready, since duplicates published by other
/// replicas would go unrecognised.
pub(crate) fn ledger_read_refused(metrics: &Metrics, ledger: &str, why: &str) {
    metrics.dedup_ledger_caught_up.set(0);
    warn!(
        ledger,
        reason = why,
        "Kafka refuses to let the bridge read the duplicates ledger; not ready"
    );
}

/// The fields every line of a delivery that got past the checks starts
/// with: what it was, and where it went.
fn delivery_fields<'f, 'b>(
    f: &'f mut Fields<'b>,
    outcome: Outcome,
    id: &str,
    d: &Delivery<'_>,
    route: &Route,
) -> &'f mut Fields<'b> {
    f.str("outcome", outcome.as_str())
        .str("ce_id", logged(id))
        .str("webhook_type", logged(d.webhook_type))
        .str("event_type", logged(d.event_type.as_deref().unwrap_or("")))
        .str("topic", &route.topic)
}

/// A failure's status, what went wrong, and its cause.
fn error_fields<'f, 'b>(f: &'f mut Fields<'b>, error: &BridgeError) -> &'f mut Fields<'b> {
    f.u64("status", u64::from(error.status().as_u16()))
        .display("error", error)
        .str("cause", &error_source(error))
}

fn mid_of(headers: Option<&HeaderMap>) -> &str {
    headers
        .and_then(|h| h.get(&PB_WEBHOOK_MID))
        .and_then(|v| v.to_str().ok())
        .map(logged)
        .unwrap_or("")
}

/// Bytes of a sender-chosen field (MID, webhook and event type) a log line
/// keeps at most: a sender must not be able to write kilobytes into every
/// line (450 MIDs of 15,000 bytes made a 7 MB log).
const LOGGED_FIELD_MAX: usize = 128;

fn logged(field: &str) -> &str {
    crate::telemetry::bounded(field, LOGGED_FIELD_MAX)
}

fn error_source(e: &BridgeError) -> String {
    std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Whole microseconds, which a log line writes as milliseconds.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Milliseconds with microsecond precision, for readable log lines.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}

mod transactions;

pub(crate) use transactions::{
    transaction_aborted, transaction_committed, transaction_unsettled, transactional_writer_ready,
    transactional_writer_refused, transactional_writer_replaced,
};

#[cfg(test)]
mod tests;
