//! The webhook endpoint: the data path, top to bottom.
//!
//! request (source, credentials, capacity, body) → delivery (parsed,
//! checked) → route → duplicates → publish → answer.
//!
//! Each step lives in the module of its name; this one only strings them
//! together, applies the deadline, and records the outcome.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::{HeaderMap, Method, Request, Response};
use tokio::time::{Instant, Sleep};

use crate::config::Config;
use crate::dedup::identity::Namespace;
use crate::dedup::{Admission, Dedup, InFlight, Lead, Verdict};
use crate::delivery::Delivery;
use crate::error::BridgeError;
use crate::http::ServerConfig;
use crate::http::access::{self, Access};
use crate::http::answer::{self, Body};
use crate::http::auth::{self, Auth};
use crate::http::server::Capacity;
use crate::kafka::publish::Publisher;
use crate::kafka::topics::Topics;
use crate::kafka::transactions::LineWriter;
use crate::labels::RejectReason;
use crate::receipt::Receipt;
use crate::route::{Route, Router};
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

/// Everything a request needs, shared by all connections.
pub struct App {
    pub server: ServerConfig,
    pub access: Arc<Access>,
    pub auth: Arc<Auth>,
    /// One slot per delivery being published (`limits.max_inflight`), and
    /// room for the bodies held (`limits.max_body_buffer_bytes`).
    pub(crate) capacity: Capacity,
    pub router: Router,
    pub topics: Arc<Topics>,
    pub(crate) publisher: Publisher,
    /// Duplicate detection, with its memory and ledger (on or off).
    pub dedup: Arc<Dedup>,
    pub metrics: Arc<Metrics>,
}

/// The parts an [`App`] is made of, each built (and checked) by start-up
/// from its own section of the configuration.
pub(crate) struct AppParts {
    pub(crate) access: Arc<Access>,
    pub(crate) auth: Arc<Auth>,
    pub(crate) router: Router,
    pub(crate) topics: Arc<Topics>,
    pub(crate) publisher: Publisher,
    pub(crate) dedup: Arc<Dedup>,
    pub(crate) metrics: Arc<Metrics>,
}

impl App {
    /// The endpoint's shared state: the request settings and the slots
    /// from `config` (`server`, `limits`), and the parts. Start-up and the
    /// tests build it the same way.
    pub(crate) fn new(config: &Config, parts: AppParts) -> App {
        let AppParts {
            access,
            auth,
            router,
            topics,
            publisher,
            dedup,
            metrics,
        } = parts;
        App {
            server: config.server.clone(),
            access,
            auth,
            capacity: config.limits.capacity(),
            router,
            topics,
            publisher,
            dedup,
            metrics,
        }
    }
}

pub async fn handle(app: Arc<App>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let _inflight = app.metrics.request_in_flight();
    let (response, latency) = deliver(&app, peer, req, started).await;
    app.metrics.observe_request(latency);
    // This request's body is released now: the gauge follows.
    app.metrics
        .set_body_buffer_bytes(app.capacity.body_bytes_held());
    response
}

async fn deliver(
    app: &Arc<App>,
    peer: SocketAddr,
    req: Request<Incoming>,
    started: Instant,
) -> (Response<Body>, Duration) {
    let received_at = SystemTime::now();
    // One timer for the whole request: reading the body and waiting for
    // Kafka share it (and its deadline is the one for topic checks).
    let timer = tokio::time::sleep_until(started + app.server.request_timeout);
    tokio::pin!(timer);
    let reject = |headers, e: BridgeError| {
        let latency = started.elapsed();
        events::rejected(&app.metrics, headers, &e, latency);
        (answer::failure(&e, app.server.retry_after), latency)
    };

    // Request: the right endpoint, from an allowed source, with valid
    // credentials, within capacity.
    if req.uri().path() != app.server.webhook_path {
        return reject(None, BridgeError::NotFound);
    }
    if req.method() != Method::POST {
        return reject(None, BridgeError::MethodNotAllowed);
    }
    let client = app.access.client(peer, req.headers());
    let source = app.access.check(client);
    if source == access::SourceCheck::Denied {
        return reject(Some(req.headers()), BridgeError::Forbidden(client));
    }
    let credentials = app.auth.check(req.headers());
    if let auth::Credentials::Denied { basic } = credentials {
        return reject(Some(req.headers()), BridgeError::Unauthorized { basic });
    }
    // Someone we know: valid credentials or an allowed source.
    let verified =
        credentials == auth::Credentials::Verified || source == access::SourceCheck::Allowed;
    // The body first, then a slot: a sender slow to send its body holds
    // only the bytes it has sent (`limits.max_body_buffer_bytes`), never
    // a slot that a genuine delivery needs.
    let (parts, body) = req.into_parts();
    let (body, _body_bytes) = match read_body(body, app, timer.as_mut()).await {
        Ok(b) => b,
        Err(e) => return reject(Some(&parts.headers), e),
    };
    let Some(_slot) = app.capacity.slot(timer.as_mut(), &app.metrics).await else {
        return reject(Some(&parts.headers), BridgeError::Overloaded);
    };

    // Delivery.
    let (delivery, route, dead_letter) = match Delivery::parse(&parts.headers, &body) {
        Ok(d) => {
            let route = app.router.route(d.webhook_type, d.event_type.as_deref());
            (d, route, None)
        }
        Err(e) => match app.router.dead_letter() {
            // Kept, not refused: the sender is known and POPBiLL would
            // only send the same broken bytes again.
            Some(dl) if verified && e.dead_letters() => {
                events::dead_lettered(&app.metrics, &parts.headers, &e);
                (Delivery::raw(&parts.headers, &body), dl, e.reject_reason())
            }
            _ => return reject(Some(&parts.headers), e),
        },
    };
    let extra_header = dead_letter.map(|r| (DEAD_LETTER_REASON, r.as_str()));

    // Duplicates. A dead letter's identity is of its own namespace: it
    // must never vouch for a routed copy of the same event.
    let namespace = match dead_letter {
        Some(_) => Namespace::DeadLetter,
        None => Namespace::Routed,
    };
    let (id, claim) = app.dedup.identify(&delivery, namespace, &route.topic);
    let end = match app.dedup.admit(claim, &id) {
        Admission::Seen => End::Duplicate { waited: false },
        Admission::InFlight(first) => match wait_for(first, timer.as_mut()).await {
            Ok(_) => End::Duplicate { waited: true },
            Err(e) => End::Failed(e),
        },
        Admission::Lead(lead) => {
            // Publish.
            let record = Outgoing {
                route,
                delivery: &delivery,
                id: &id,
                headers: &parts.headers,
                extra_header,
                received_at,
                started,
            };
            match publish(app, record, timer.as_mut(), lead).await {
                Ok(receipt) => End::Published {
                    receipt,
                    dead_letter,
                },
                Err(e) => End::Failed(e),
            }
        }
    };

    // Answer.
    // The latency of the log line is the one of the metric: one clock read.
    let latency = started.elapsed();
    (finish(app, end, route, &delivery, &id, latency), latency)
}

/// Turns how a delivery ended into its log line, its metrics and the
/// answer POPBiLL gets — in one place, so the three always agree.
fn finish(
    app: &App,
    end: End,
    route: &Route,
    delivery: &Delivery<'_>,
    id: &str,
    latency: std::time::Duration,
) -> Response<Body> {
    let metrics = &app.metrics;
    match end {
        End::Published {
            receipt,
            dead_letter,
        } => {
            match dead_letter {
                Some(reason) => events::dead_letter_written(metrics, reason),
                None => app.topics.note_written(route),
            }
            events::acknowledged(metrics, route, delivery, id, receipt, latency);
            answer::ok(app.server.ok_body)
        }
        End::Duplicate { waited } => {
            events::duplicate(metrics, route, delivery, id, waited, latency);
            answer::ok(app.server.ok_body)
        }
        End::Failed(e) => {
            app.topics.note_failure(&e);
            events::failed(metrics, route, delivery, id, &e, latency);
            answer::failure(&e, app.server.retry_after)
        }
    }
}

/// How a delivery that got past the checks ended.
enum End {
    /// This request's copy was written and confirmed (to the dead-letter
    /// topic, with the reason, when it was malformed).
    Published {
        receipt: Receipt,
        dead_letter: Option<RejectReason>,
    },
    /// Another copy was (or, when `waited`, just got) confirmed.
    Duplicate { waited: bool },
    /// Kafka did not confirm (this copy, or the first copy it waited for).
    Failed(Arc<BridgeError>),
}

/// Header carrying why a dead-lettered delivery was refused (part of the
/// record format).
pub use crate::kafka::record::DEAD_LETTER_REASON;

/// One record to publish: where, what, and with which headers.
struct Outgoing<'r, 'a> {
    route: &'r Route,
    delivery: &'r Delivery<'a>,
    /// The record's `ce_id` (see [`Identity::id`]).
    id: &'r str,
    headers: &'r HeaderMap,
    extra_header: Option<(&'static str, &'static str)>,
    received_at: SystemTime,
    /// When the request's handling began (its headers were read).
    started: Instant,
}

/// Makes sure the topic exists, hands the record to the producer, and
/// waits — at most until the deadline — for Kafka's verdict, which the
/// duplicates part records (and awaits to the end even if this request goes
/// away; see [`Lead::confirm`]).
async fn publish(
    app: &Arc<App>,
    rec: Outgoing<'_, '_>,
    timer: Pin<&mut Sleep>,
    lead: Lead,
) -> Verdict {
    let route = rec.route;
    let line = lead.ledger_line(rec.id, &route.topic);
    let mut pending = match app
        .topics
        .ensure(route, timer.deadline())
        .await
        .and_then(|()| {
            app.publisher.enqueue(
                &route.topic,
                rec.delivery,
                rec.id,
                rec.headers,
                rec.extra_header,
                rec.received_at,
                line.as_ref().map(|l| l as &LineWriter<'_>),
            )
        }) {
        Ok(p) => p,
        Err(e) => {
            let e = Arc::new(e);
            lead.settle(Err(e.clone()));
            return Err(e);
        }
    };
    app.metrics
        .observe_handover(pending.handed_at().saturating_duration_since(rec.started));
    // Held by this request, not by the report (which outlives a 503 in a
    // task of its own): dropped when the request stops waiting, so that a
    // transaction not yet committing cannot make a delivery answered 503
    // visible.
    let waiting = pending.take_withdrawal();
    let verdict = lead.confirm(pending, rec.id, &route.topic, timer).await;
    match (verdict, waiting) {
        (Err(e), Some(w)) if matches!(*e, BridgeError::PublishTimeout) => {
            // At the deadline with the commit asked for: not "not written".
            if w.withdraw() {
                Err(e)
            } else {
                Err(Arc::new(BridgeError::CommitPending))
            }
        }
        (verdict, _) => verdict,
    }
}

/// Waits for the first copy's verdict until the deadline.
async fn wait_for(first: Arc<InFlight>, timer: Pin<&mut Sleep>) -> Verdict {
    tokio::select! {
        biased;
        v = first.verdict() => v,
        () = timer => Err(Arc::new(BridgeError::PublishTimeout)),
    }
}

/// Reads the whole body, refusing it as soon as it passes
/// `server.max_body_bytes` (not after buffering it) and giving up at the
/// deadline. Each piece takes room in `limits.max_body_buffer_bytes` as
/// it arrives (nothing is reserved for what a Content-Length only
/// announces); the room is held until the returned permit drops.
async fn read_body<'a>(
    mut body: Incoming,
    app: &'a App,
    mut timer: Pin<&mut Sleep>,
) -> Result<(Bytes, Option<tokio::sync::SemaphorePermit<'a>>), BridgeError> {
    let limit = app.server.max_body_bytes;
    // A Content-Length above the limit is refused before reading a byte.
    if body.size_hint().lower() > limit as u64 {
        return Err(BridgeError::BodyTooLarge { limit });
    }
    // The usual body arrives in one piece and is kept as it came; only a
    // second piece makes a buffer to join them in.
    let (mut first, mut joined) = (Bytes::new(), None::<bytes::BytesMut>);
    let (mut len, mut held): (usize, Option<tokio::sync::SemaphorePermit<'a>>) = (0, None);
    loop {
        let frame = tokio::select! {
            biased;
            f = body.frame() => f,
            () = timer.as_mut() => return Err(BridgeError::BodyTimeout),
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame.map_err(BridgeError::BodyRead)?.into_data() else {
            // Trailers: nothing of the body.
            continue;
        };
        if data.is_empty() {
            continue;
        }
        len += data.len();
        if len > limit {
            return Err(BridgeError::BodyTooLarge { limit });
        }
        let Some(room) = app.capacity.body_bytes(data.len(), timer.as_mut()).await else {
            return Err(BridgeError::Overloaded);
        };
        match held.as_mut() {
            Some(h) => h.merge(room),
            None => held = Some(room),
        }
        app.metrics
            .set_body_buffer_bytes(app.capacity.body_bytes_held());
        if first.is_empty() {
            first = data;
        } else {
            let all = joined.get_or_insert_with(|| {
                let mut all = bytes::BytesMut::with_capacity(first.len() + data.len());
                all.extend_from_slice(&first);
                all
            });
            all.extend_from_slice(&data);
        }
    }
    Ok((joined.map_or(first, bytes::BytesMut::freeze), held))
}

#[cfg(test)]
mod tests;
