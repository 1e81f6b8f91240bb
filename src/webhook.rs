//! The webhook endpoint: the data path, top to bottom.
//!
//! request → delivery (parsed, checked) → route → publish → answer.
//!
//! Each step lives in the module of its name; this one only strings them
//! together, applies the deadline, and records the outcome.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::{Method, Request, Response};
use tokio::time::Instant;

use crate::answer::{self, Body};
use crate::config::ServerConfig;
use crate::delivery::Delivery;
use crate::error::BridgeError;
use crate::health::Health;
use crate::metrics::{InflightGuard, Metrics};
use crate::outcome;
use crate::publish::Publisher;
use crate::route::Router;
use crate::topics::Topics;

/// Everything a request needs, shared by all connections.
pub struct App {
    pub server: ServerConfig,
    pub router: Router,
    pub topics: Arc<Topics>,
    pub publisher: Publisher,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let _inflight = InflightGuard::new(&app.metrics.inflight);
    let response = deliver(&app, req, started).await;
    app.metrics
        .request_duration
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn deliver(app: &App, req: Request<Incoming>, started: Instant) -> Response<Body> {
    let received_at = SystemTime::now();
    let deadline = started + app.server.request_timeout;
    let reject = |headers, e: BridgeError| {
        outcome::rejected(&app.metrics, headers, &e, started.elapsed());
        answer::error(&e, app.server.retry_after)
    };

    // Request.
    if req.uri().path() != app.server.webhook_path {
        return reject(None, BridgeError::NotFound);
    }
    if req.method() != Method::POST {
        return reject(None, BridgeError::MethodNotAllowed);
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(body, app.server.max_body_bytes, deadline).await {
        Ok(b) => b,
        Err(e) => return reject(Some(&parts.headers), e),
    };

    // Delivery.
    let delivery = match Delivery::parse(&parts.headers, &body) {
        Ok(d) => d,
        Err(e) => return reject(Some(&parts.headers), e),
    };

    // Route.
    let route = app
        .router
        .route(delivery.webhook_type, delivery.event_type.as_deref());

    // Publish.
    let published = match app.topics.ensure(route, deadline).await {
        Ok(()) => {
            app.publisher
                .publish(
                    &route.topic,
                    &delivery,
                    &parts.headers,
                    received_at,
                    deadline,
                )
                .await
        }
        Err(e) => Err(e),
    };

    // Answer.
    match published {
        Ok(receipt) => {
            outcome::acknowledged(&app.metrics, route, &delivery, receipt, started.elapsed());
            answer::ok(app.server.ok_body)
        }
        Err(e) => {
            outcome::failed(&app.metrics, route, &delivery, &e, started.elapsed());
            answer::error(&e, app.server.retry_after)
        }
    }
}

/// Reads the whole body, refusing it as soon as it passes `limit` (not after
/// buffering it) and giving up at the deadline.
async fn read_body(body: Incoming, limit: usize, deadline: Instant) -> Result<Bytes, BridgeError> {
    // A Content-Length above the limit is refused before reading a byte.
    if body.size_hint().lower() > limit as u64 {
        return Err(BridgeError::BodyTooLarge { limit });
    }
    let collected = tokio::time::timeout_at(deadline, Limited::new(body, limit).collect())
        .await
        .map_err(|_| BridgeError::BodyTimeout)?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => match e.downcast::<hyper::Error>() {
            Ok(hyper_err) => Err(BridgeError::BodyRead(*hyper_err)),
            // The only other error `Limited` produces is its length error.
            Err(_) => Err(BridgeError::BodyTooLarge { limit }),
        },
    }
}
