//! The webhook port's metrics: connections (open, refused at the cap),
//! requests in flight and the bodies they hold, the slots they wait for,
//! and what the HTTP and TLS layers refused before the handler.

use prometheus::{IntCounter, IntGauge, Registry};

use crate::labels::HttpErrorKind;
use crate::telemetry::metrics::{GaugeGuard, Metrics, clamp, counter, gauge, per_value};

pub(super) struct HttpMetrics {
    pub(super) inflight: IntGauge,
    pub(super) body_buffer_bytes: IntGauge,
    pub(super) open_connections: IntGauge,
    pub(super) http_errors: Vec<IntCounter>,
    pub(super) connections_rejected: IntCounter,
    pub(super) slot_waits: IntCounter,
    pub(super) tls_handshake_failures: IntCounter,
    pub(super) auth_reload_failures: IntCounter,
}

impl HttpMetrics {
    pub(super) fn new(registry: &Registry) -> HttpMetrics {
        let inflight = gauge(
            registry,
            "inflight_requests",
            "Webhook requests being handled right now.",
        );
        let body_buffer_bytes = gauge(
            registry,
            "body_buffer_bytes",
            "Bytes of request bodies held in memory (being read, or waiting for Kafka); at most limits.max_body_buffer_bytes.",
        );
        let http_errors = per_value(
            registry,
            "http_errors_total",
            "Connections refused or dropped by the HTTP layer before a request reached the handler (headers too large, malformed HTTP, header timeout, client gone), by kind.",
            "kind",
            HttpErrorKind::ALL.iter().map(|k| k.as_str()),
        );
        let open_connections = gauge(
            registry,
            "open_connections",
            "Open connections on the webhook port.",
        );
        let connections_rejected = counter(
            registry,
            "connections_rejected_total",
            "Connections closed at once because limits.max_connections were open.",
        );
        let slot_waits = counter(
            registry,
            "inflight_slot_waits_total",
            "Deliveries that found all limits.max_inflight slots taken and waited for one (up to limits.inflight_wait; those still without one are rejected as overloaded).",
        );
        let tls_handshake_failures = counter(
            registry,
            "tls_handshake_failures_total",
            "TLS handshakes on the webhook port that failed or timed out.",
        );
        let auth_reload_failures = counter(
            registry,
            "auth_reload_failures_total",
            "Changed credential files that held no usable credential; the previous credentials were kept.",
        );
        HttpMetrics {
            inflight,
            body_buffer_bytes,
            open_connections,
            http_errors,
            connections_rejected,
            slot_waits,
            tls_handshake_failures,
            auth_reload_failures,
        }
    }
}

impl Metrics {
    pub(in crate::telemetry) fn http_error(&self, kind: HttpErrorKind) -> &IntCounter {
        &self.http_errors[kind as usize]
    }

    /// Counts a webhook request as in flight while the guard lives.
    pub(crate) fn request_in_flight(&self) -> GaugeGuard<'_> {
        GaugeGuard::new(&self.inflight)
    }

    /// Counts an open webhook connection while the guard lives.
    pub(crate) fn connection_open(&self) -> GaugeGuard<'_> {
        GaugeGuard::new(&self.open_connections)
    }

    /// Bytes of request bodies held in memory right now.
    pub(crate) fn set_body_buffer_bytes(&self, n: usize) {
        self.body_buffer_bytes.set(clamp(n as u64));
    }

    /// The counter credential reloads that failed are counted on (kept by
    /// the credential store itself, which reloads on its own schedule).
    pub(crate) fn auth_reload_failures(&self) -> IntCounter {
        self.auth_reload_failures.clone()
    }
}
