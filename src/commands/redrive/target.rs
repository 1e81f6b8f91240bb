//! One record: where it can go now (the routes, topics, duplicate
//! detection and producer), and its re-drive — rebuilt into the request it
//! came from, checked, routed, and published when its route changed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use rdkafka::message::{Headers, Message, OwnedMessage};

use super::summary::Fate;
use crate::dedup::identity::Namespace;
use crate::dedup::{Admission, Dedup};
use crate::delivery::Delivery;
use crate::kafka::publish::Publisher;
use crate::kafka::record::{RECEIVED_AT, REDRIVEN_FROM, is_bridge_header};
use crate::kafka::topics::Topics;
use crate::kafka::transactions::LineWriter;

/// Where a record can go: the routes, their topics, the duplicate
/// detection and the producer.
pub(super) struct Target {
    pub(super) router: crate::route::Router,
    pub(super) topics: Arc<Topics>,
    pub(super) dedup: Arc<Dedup>,
    pub(super) publisher: Publisher,
    /// For one record, as the webhook's `server.request_timeout`.
    pub(super) deadline: Duration,
    /// The topic read; a record still routed there is left.
    pub(super) source: String,
    pub(super) dry_run: bool,
    /// Dry run: the claims this run would publish. Nothing is published,
    /// so the duplicates part does not remember them; this does, so that a
    /// second record of the same event counts as already published, as in
    /// a real run.
    pub(super) would_publish: std::sync::Mutex<std::collections::HashSet<crate::dedup::Claim>>,
}

/// One record: rebuilt, checked, routed, and re-driven when its route
/// changed.
pub(super) async fn redrive_one(msg: &OwnedMessage, to: &Target) -> Fate {
    let (router, dedup, publisher) = (&to.router, &to.dedup, &to.publisher);
    let (source, dry_run) = (to.source.as_str(), to.dry_run);
    let from = format!("{source}/{}/{}", msg.partition(), msg.offset());
    let headers = request_headers(msg);
    let body = msg.payload().unwrap_or_default();
    let delivery = match Delivery::parse(&headers, body) {
        Ok(d) => d,
        Err(e) => {
            return Fate::StillInvalid(e.reject_reason().map_or("invalid", |r| r.as_str()));
        }
    };
    let route = router.route(delivery.webhook_type, delivery.event_type.as_deref());
    if &*route.topic == source {
        return Fate::StillUnrouted;
    }
    let (id, claim) = dedup.identify(&delivery, Namespace::Routed, &route.topic);
    if dry_run
        && dedup.enabled()
        && !to
            .would_publish
            .lock()
            .map(|mut seen| seen.insert(claim))
            .unwrap_or(true)
    {
        return Fate::AlreadyPublished;
    }
    let lead = match dedup.admit(claim, &id) {
        Admission::Seen => return Fate::AlreadyPublished,
        // The same event, being re-driven from another record right now:
        // published once it is confirmed, and only then.
        Admission::InFlight(copies) => {
            return match copies.verdict().await {
                Ok(_) => Fate::AlreadyPublished,
                Err(e) => Fate::Failed(e.to_string()),
            };
        }
        Admission::Lead(lead) => lead,
    };
    if dry_run {
        // Dropping the lead forgets the claim: nothing was published.
        return Fate::Redriven(route.topic.to_string());
    }
    let received_at = received_at(msg);
    let deadline = tokio::time::Instant::now() + to.deadline;
    let line = lead.ledger_line(&id, &route.topic);
    let enqueued = match to.topics.ensure(route, deadline).await {
        Ok(()) => publisher.enqueue(
            &route.topic,
            &delivery,
            &id,
            &headers,
            Some((REDRIVEN_FROM, &from)),
            received_at,
            line.as_ref().map(|l| l as &LineWriter<'_>),
        ),
        Err(e) => Err(e),
    };
    let pending = match enqueued {
        Ok(p) => p,
        Err(e) => {
            let e = Arc::new(e);
            lead.settle(Err(e.clone()));
            return Fate::Failed(e.to_string());
        }
    };
    match lead
        .confirm(
            pending,
            &id,
            &route.topic,
            std::pin::pin!(tokio::time::sleep_until(deadline)),
        )
        .await
    {
        Ok(_) => Fate::Redriven(route.topic.to_string()),
        Err(e) => Fate::Failed(e.to_string()),
    }
}

/// The request headers a record carries (the bridge forwards every
/// POPBiLL header under its lower-case name); its own `ce_*` and
/// `popbill-bridge-*` headers are not part of the request.
fn request_headers(msg: &OwnedMessage) -> HeaderMap {
    let mut out = HeaderMap::new();
    let Some(hs) = msg.headers() else { return out };
    for h in hs.iter() {
        if is_bridge_header(h.key) {
            continue;
        }
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::from_bytes(h.key.as_bytes()),
            h.value.map(HeaderValue::from_bytes),
        ) {
            out.append(name, value);
        }
    }
    out
}

/// When the bridge first received the delivery: its header, else the
/// record's timestamp, else now.
fn received_at(msg: &OwnedMessage) -> SystemTime {
    let header = msg.headers().and_then(|hs| {
        hs.iter()
            .find(|h| h.key == RECEIVED_AT)
            .and_then(|h| std::str::from_utf8(h.value?).ok())
            .and_then(|v| humantime::parse_rfc3339(v).ok())
    });
    header
        .or_else(|| {
            msg.timestamp()
                .to_millis()
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
        })
        .unwrap_or_else(SystemTime::now)
}
