//! The admin listener: `/metrics` for Prometheus, `/healthz` for liveness,
//! `/readyz` for readiness. It runs on its own port so it can stay inside
//! the cluster while the webhook port faces POPBiLL.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::health::Health;
use crate::http::answer::{Body, PLAIN, text};
use crate::telemetry::metrics::Metrics;

pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub(crate) health: Arc<Health>,
}

pub async fn handle(admin: Arc<Admin>, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            Bytes::from_static(b"method not allowed: use GET\n"),
        );
    }
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from(admin.metrics.render()),
        ),
        "/healthz" => text(StatusCode::OK, PLAIN, Bytes::from_static(b"ok\n")),
        "/readyz" => {
            // Settings that put some deliveries at risk without stopping
            // the rest: said either way.
            let warnings: String = admin
                .health
                .warnings()
                .iter()
                .map(|w| format!("warning: {w}\n"))
                .collect();
            match admin.health.readiness() {
                Ok(()) => text(
                    StatusCode::OK,
                    PLAIN,
                    Bytes::from(format!("ready\n{warnings}")),
                ),
                Err(reasons) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    PLAIN,
                    Bytes::from(format!("not ready: {}\n{warnings}", reasons.join("; "))),
                ),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            Bytes::from_static(b"not found\n"),
        ),
    }
}
