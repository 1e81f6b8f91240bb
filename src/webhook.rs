//! The webhook endpoint: the data path, top to bottom.
//!
//! request → delivery (parsed, checked) → route → duplicates → publish →
//! answer.
//!
//! Each step lives in the module of its name; this one only strings them
//! together, applies the deadline, and records the outcome.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::{HeaderMap, Method, Request, Response};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::answer::{self, Body};
use crate::config::ServerConfig;
use crate::dedup::{Admission, Dedup, Lead, Verdict};
use crate::delivery::Delivery;
use crate::error::BridgeError;
use crate::health::Health;
use crate::identity::Identity;
use crate::ledger::Ledger;
use crate::metrics::{InflightGuard, Metrics};
use crate::outcome;
use crate::publish::Publisher;
use crate::route::{Route, Router};
use crate::topics::Topics;

/// Everything a request needs, shared by all connections.
pub struct App {
    pub server: ServerConfig,
    pub router: Router,
    pub topics: Arc<Topics>,
    pub publisher: Publisher,
    pub dedup: Arc<Dedup>,
    /// Present when duplicate detection is on.
    pub ledger: Option<Arc<Ledger>>,
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

async fn deliver(app: &Arc<App>, req: Request<Incoming>, started: Instant) -> Response<Body> {
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

    // Duplicates.
    let identity = Identity::of(&delivery);
    let lead = match app.dedup.admit(identity.digest) {
        Admission::Seen => {
            outcome::duplicate(
                &app.metrics,
                route,
                &delivery,
                &identity.id,
                false,
                started.elapsed(),
            );
            return answer::ok(app.server.ok_body);
        }
        Admission::Follow(verdict) => {
            return match wait_for(verdict, deadline).await {
                Ok(_) => {
                    outcome::duplicate(
                        &app.metrics,
                        route,
                        &delivery,
                        &identity.id,
                        true,
                        started.elapsed(),
                    );
                    answer::ok(app.server.ok_body)
                }
                Err(e) => {
                    outcome::failed(
                        &app.metrics,
                        route,
                        &delivery,
                        &identity.id,
                        &e,
                        started.elapsed(),
                    );
                    answer::error(&e, app.server.retry_after)
                }
            };
        }
        Admission::Lead(lead) => lead,
    };

    // Publish.
    let verdict = publish(
        app,
        route,
        &delivery,
        &identity,
        &parts.headers,
        received_at,
        deadline,
        lead,
    )
    .await;

    // Answer.
    match verdict {
        Ok(receipt) => {
            outcome::acknowledged(
                &app.metrics,
                route,
                &delivery,
                &identity.id,
                receipt,
                started.elapsed(),
            );
            answer::ok(app.server.ok_body)
        }
        Err(e) => {
            outcome::failed(
                &app.metrics,
                route,
                &delivery,
                &identity.id,
                &e,
                started.elapsed(),
            );
            answer::error(&e, app.server.retry_after)
        }
    }
}

/// Makes sure the topic exists, hands the record to the producer, and
/// waits — at most until the deadline — for Kafka's verdict. The verdict
/// itself is awaited in a task of its own that also tells the duplicate
/// memory and the ledger, so it completes even if this request is dropped
/// or times out: a write Kafka confirms late is still remembered, and the
/// retry POPBiLL sends after our 503 is recognised as a duplicate.
#[allow(clippy::too_many_arguments)]
async fn publish(
    app: &Arc<App>,
    route: &Route,
    delivery: &Delivery<'_>,
    identity: &Identity<'_>,
    headers: &HeaderMap,
    received_at: SystemTime,
    deadline: Instant,
    lead: Lead,
) -> Verdict {
    let verdict = lead.subscribe();
    let pending = match app.topics.ensure(route, deadline).await.and_then(|()| {
        app.publisher
            .enqueue(&route.topic, delivery, &identity.id, headers, received_at)
    }) {
        Ok(p) => p,
        Err(e) => {
            let e = Arc::new(e);
            lead.complete(Err(e.clone()), SystemTime::now());
            return Err(e);
        }
    };
    let ledger_entry = app
        .ledger
        .clone()
        .map(|l| (l, identity.id.to_string(), route.topic.clone()));
    tokio::spawn(async move {
        let result = pending.confirmed().await.map_err(Arc::new);
        let digest = lead.digest();
        lead.complete(result.clone(), SystemTime::now());
        if let (Ok(receipt), Some((ledger, id, topic))) = (result, ledger_entry) {
            ledger.write(digest, &id, &topic, receipt).await;
        }
    });
    wait_for(verdict, deadline).await
}

/// Waits for a first copy's verdict until the deadline.
async fn wait_for(mut verdict: watch::Receiver<Option<Verdict>>, deadline: Instant) -> Verdict {
    match tokio::time::timeout_at(deadline, verdict.wait_for(Option::is_some)).await {
        Ok(Ok(v)) => v
            .clone()
            .unwrap_or_else(|| Err(Arc::new(BridgeError::Abandoned))),
        // The lead vanished without a verdict: cannot happen (its Drop
        // reports), but must not hang or claim success.
        Ok(Err(_)) => Err(Arc::new(BridgeError::Abandoned)),
        Err(_elapsed) => Err(Arc::new(BridgeError::PublishTimeout)),
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
