//! Publish: hand one delivery to Kafka and wait for the delivery report.
//!
//! The producer is idempotent with `acks=all`, so a confirmed write is on
//! every in-sync replica and librdkafka's own retries never duplicate it.
//! `message.timeout.ms` sits below the HTTP deadline: librdkafka gives up and
//! reports before we must answer, so the answer is always the real outcome.
//! The caller's wait is still bounded by the deadline, as a second line of
//! defence.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::delivery::Delivery;
use crate::error::BridgeError;
use crate::kafka::KafkaConfig;
use crate::kafka::record;
use crate::kafka::record::CloudEventsConfig;
use crate::telemetry::logging::{Say, Throttle};
use crate::telemetry::metrics::Metrics;

/// Where Kafka put the record.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    pub partition: i32,
    pub offset: i64,
}

/// What every Kafka client of the bridge shares: one throttle for
/// librdkafka's trouble lines (all clients report the same outage), and the
/// first fatal error.
pub struct ClientEvents {
    throttle: Throttle,
    /// Set once, by the first fatal error of any client.
    fatal: watch::Sender<Option<String>>,
    /// Woken by every librdkafka error: time to ask whether it was fatal.
    pub errors: Notify,
}

impl Default for ClientEvents {
    fn default() -> Self {
        ClientEvents::new(TROUBLE_SUMMARY_EVERY)
    }
}

/// At most one summary of librdkafka's repeated trouble lines this often.
const TROUBLE_SUMMARY_EVERY: Duration = Duration::from_secs(30);

/// Log target of the lines librdkafka's callbacks produce.
const TARGET: &str = "popbill_bridge::kafka";

impl ClientEvents {
    pub fn new(summary_every: Duration) -> ClientEvents {
        ClientEvents {
            throttle: Throttle::new(summary_every),
            fatal: watch::Sender::new(None),
            errors: Notify::new(),
        }
    }

    /// The fatal error that stopped a client, if one did.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.borrow().clone()
    }

    /// Resolves with the reason once a client hit a fatal error.
    pub async fn wait_fatal(&self) -> String {
        let mut rx = self.fatal.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            // The sender lives in `self`, so it cannot be gone while we
            // borrow it; never resolve rather than invent a fatal error.
            Err(_) => std::future::pending().await,
        }
    }

    /// Kafka answered: ends a bout of trouble. Returns how many librdkafka
    /// lines were suppressed since the last one logged, if there was one.
    pub fn kafka_answered(&self) -> Option<u64> {
        self.throttle.clear()
    }

    /// A librdkafka error or warning: logged at once when it starts a bout,
    /// otherwise counted and summarised.
    fn trouble(&self, error: bool, line: std::fmt::Arguments<'_>) {
        let every = humantime::format_duration(self.throttle.every());
        match self.throttle.hit(std::time::Instant::now()) {
            Say::Quiet => {}
            Say::First if error => error!(
                target: TARGET,
                "librdkafka: {line} (repeats are counted and summarised every {every} until Kafka answers)"
            ),
            Say::First => warn!(
                target: TARGET,
                "librdkafka: {line} (repeats are counted and summarised every {every} until Kafka answers)"
            ),
            Say::Summary { suppressed } => warn!(
                target: TARGET,
                suppressed,
                "librdkafka: {line} ({suppressed} similar lines suppressed in the last {every})"
            ),
        }
    }

    /// A fatal error: the client can never work again. Logged once, and
    /// published to readiness and to the owner of the bridge.
    pub fn set_fatal(&self, reason: &str) {
        let first = self.fatal.send_if_modified(|f| {
            if f.is_none() {
                *f = Some(reason.to_string());
                true
            } else {
                false
            }
        });
        if first {
            error!(
                target: TARGET,
                reason,
                "fatal Kafka client error: the producer can never write again; readiness fails and the bridge exits so that it is restarted with a new producer"
            );
        }
    }
}

/// librdkafka callbacks of every client the bridge makes: statistics become
/// gauges (producer only), log lines and errors become tracing events through
/// the shared [`ClientEvents`], fatal errors stop the bridge.
#[derive(Clone)]
pub struct KafkaContext {
    /// Present on the producer: its statistics feed the gauges.
    metrics: Option<Arc<Metrics>>,
    events: Arc<ClientEvents>,
}

impl KafkaContext {
    /// The context of a client other than the producer (admin, consumer):
    /// same log throttle and fatal signal, no statistics.
    pub fn other_client(events: Arc<ClientEvents>) -> KafkaContext {
        KafkaContext {
            metrics: None,
            events,
        }
    }
}

impl ClientContext for KafkaContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(m) = &self.metrics {
            m.record_kafka_stats(&statistics);
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        use RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                self.events.trouble(true, format_args!("{fac}: {message}"))
            }
            L::Warning => self.events.trouble(false, format_args!("{fac}: {message}")),
            L::Notice | L::Info => info!(target: TARGET, "librdkafka: {fac}: {message}"),
            L::Debug => debug!(target: TARGET, "librdkafka: {fac}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.events.set_fatal(reason);
        } else {
            self.events.trouble(true, format_args!("{error}: {reason}"));
        }
        // librdkafka usually reports a fatal error with its cause's code
        // (e.g. ClusterAuthorizationFailed), the fatal flag out of reach of
        // this callback: ask the producer itself (see `Topics::check_fatal`).
        self.events.errors.notify_one();
    }
}

impl ConsumerContext for KafkaContext {}

pub type Producer = FutureProducer<KafkaContext>;

/// The librdkafka settings shared by every client the bridge makes: the
/// brokers, the pass-through properties (SASL, TLS, ...).
pub fn base_client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    c.set("client.id", &cfg.client_id);
    for (k, v) in &cfg.properties {
        c.set(k, v);
    }
    c
}

/// Longest record key. POPBiLL's keys (`corpNum:itemKey`) are under 30
/// bytes; a longer one (its parts come from the body) is replaced by its
/// digest, which keeps one document's events on one partition and the
/// record's size bounded.
pub const MAX_KEY_BYTES: usize = 256;

/// Framing and the bridge's own fixed headers: record batch header (61),
/// record framing (< 40), the names and values of `ce_specversion`,
/// `ce_time`, the receive time, the names of `ce_id`, `ce_source`,
/// `ce_type`, `ce_subject`, the dead-letter reason (together < 400).
const RECORD_OVERHEAD: usize = 1024;

/// Headers the bridge adds to what the request carried.
const OWN_HEADERS: usize = 9;

/// What bounds a request the bridge accepts (`server.max_body_bytes`,
/// `limits.max_header_bytes`, `limits.max_headers`).
#[derive(Debug, Clone, Copy)]
pub struct RecordBounds {
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

/// The largest record the bridge can write for a delivery it accepts, and
/// so the limit the producer (`message.max.bytes`) and every topic
/// (`max.message.bytes`) must allow: otherwise a valid body under
/// `server.max_body_bytes` would get 503 on every retry.
pub fn max_record_bytes(b: &RecordBounds, ce: &CloudEventsConfig) -> usize {
    b.max_body_bytes
        // Every request header travels, and the MID a second time as ce_id.
        + 2 * b.max_header_bytes
        // Each header's name and value carry a length prefix (a varint,
        // at most 5 bytes each).
        + 10 * (b.max_headers + OWN_HEADERS)
        + MAX_KEY_BYTES
        + record::MAX_SUBJECT_BYTES
        // ce_source, and ce_type: prefix, webhook and event type (each
        // cut to 100 ASCII characters).
        + ce.source.len()
        + ce.type_prefix.len()
        + 202
        + RECORD_OVERHEAD
}

/// The record key: as `Delivery::key` gives it, or its digest when longer
/// than [`MAX_KEY_BYTES`].
fn bounded_key(key: Cow<'_, str>) -> Cow<'_, str> {
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    let d = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    Cow::Owned(format!("sha256:{:032x}", u128::from_be_bytes(first)))
}

/// The producer: `acks=all`, idempotent, `message.max.bytes` at least
/// `max_record_bytes` (see [`max_record_bytes`]).
pub fn create_producer(
    cfg: &KafkaConfig,
    max_record_bytes: usize,
    metrics: Arc<Metrics>,
    events: Arc<ClientEvents>,
) -> KafkaResult<Producer> {
    let mut c = base_client_config(cfg);
    // Every body the bridge accepts must fit (librdkafka's default is
    // 1,000,000 bytes, below the 1 MiB body limit). A larger value from
    // kafka.properties is kept.
    let needed = max_record_bytes;
    let given = cfg
        .properties
        .get("message.max.bytes")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    c.set("message.max.bytes", needed.max(given).to_string());
    // A bounded queue: when Kafka is slow, a full queue answers 503 at once
    // instead of holding bodies without limit. Overridable via properties.
    if !cfg.properties.contains_key("queue.buffering.max.kbytes") {
        c.set("queue.buffering.max.kbytes", "65536");
    }
    c.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", millis(cfg.message_timeout))
        .set("statistics.interval.ms", millis(cfg.statistics_interval));
    c.create_with_context(KafkaContext {
        metrics: Some(metrics),
        events,
    })
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

pub struct Publisher {
    producer: Producer,
    cloudevents: CloudEventsConfig,
    metrics: Arc<Metrics>,
}

impl Publisher {
    pub fn new(producer: Producer, cloudevents: CloudEventsConfig, metrics: Arc<Metrics>) -> Self {
        Publisher {
            producer,
            cloudevents,
            metrics,
        }
    }

    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Hands the delivery to the producer. Never waits: a full queue is an
    /// answer (503), not a hang while POPBiLL's connection times out.
    pub fn enqueue(
        &self,
        topic: &str,
        delivery: &Delivery<'_>,
        id: &str,
        request_headers: &hyper::HeaderMap,
        extra_header: Option<(&str, &str)>,
        received_at: SystemTime,
    ) -> Result<Pending, BridgeError> {
        let mut headers = record::headers(
            request_headers,
            delivery,
            id,
            &self.cloudevents,
            received_at,
        );
        if let Some((key, value)) = extra_header {
            headers = headers.insert(rdkafka::message::Header {
                key,
                value: Some(value),
            });
        }
        let key = delivery.key().map(bounded_key);
        let timestamp = received_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic)
            .payload(delivery.body)
            .headers(headers)
            .timestamp(timestamp);
        if let Some(k) = key.as_deref() {
            rec = rec.key(k);
        }
        let report = self
            .producer
            .send_result(rec)
            .map_err(|(e, _)| BridgeError::from_kafka(e, topic))?;
        Ok(Pending {
            report,
            topic: topic.into(),
            started: Instant::now(),
            metrics: self.metrics.clone(),
        })
    }
}

/// A record handed to the producer, waiting for its delivery report (a
/// future; see [`crate::dedup::Lead::confirm`] for who awaits it, and how a
/// client that hangs up does not stop the bridge from learning — and
/// remembering — how the write ended).
pub struct Pending {
    report: DeliveryFuture,
    topic: Arc<str>,
    started: Instant,
    metrics: Arc<Metrics>,
}

/// Resolves with Kafka's verdict. librdkafka always reports within
/// `message.timeout.ms`, so this ends without a timer of its own.
impl std::future::Future for Pending {
    type Output = Result<Receipt, Arc<BridgeError>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let result = std::task::ready!(std::pin::Pin::new(&mut self.report).poll(cx));
        self.metrics.observe_publish(self.started.elapsed());
        std::task::Poll::Ready(match result {
            // The producer dropped the report: only while it is torn down.
            Err(_canceled) => Err(Arc::new(BridgeError::ShuttingDown)),
            Ok(Err((e, _msg))) => Err(Arc::new(BridgeError::from_kafka(e, &self.topic))),
            Ok(Ok(d)) => Ok(Receipt {
                partition: d.partition,
                offset: d.offset,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;
    use hyper::header::{HeaderName, HeaderValue};
    use rdkafka::message::Headers as _;

    #[test]
    fn item4_the_largest_record_a_valid_delivery_makes_fits_the_reckoned_limit() {
        let config = crate::config::Config::default();
        let limit = config.max_record_bytes();
        // The figure the README gives.
        assert_eq!(limit, 1_083_854);
        assert!(limit > 1_000_000, "librdkafka's default would refuse it");
        assert!(limit > 1_048_588, "the broker's default would refuse it");

        // A worst case: the request head at its limit (a long MID, many
        // headers), a body at its limit whose itemKey and corpNum are as
        // long as they can be.
        let mut req = HeaderMap::new();
        let mid = "m".repeat(8 * 1024);
        req.insert(
            HeaderName::from_static("pb-webhook-type"),
            HeaderValue::from_static("TAXINVOICE.STATE"),
        );
        req.insert(
            HeaderName::from_static("pb-webhook-mid"),
            HeaderValue::from_str(&mid).expect("ascii"),
        );
        let mut head = 16 + 16 + 14 + mid.len();
        for i in 0.. {
            let name = format!("pb-custom-{i}");
            let value = "v".repeat(100);
            if head + name.len() + value.len() + 4 > config.limits.max_header_bytes
                || req.len() + 1 > config.limits.max_headers
            {
                break;
            }
            head += name.len() + value.len() + 4;
            req.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(&value).expect("value"),
            );
        }
        let half = config.server.max_body_bytes / 2 - 40;
        let body = format!(
            r#"{{"corpNum":"{}","itemKey":"{}","eventType":"{}"}}"#,
            "c".repeat(half),
            "i".repeat(half),
            "E".repeat(20)
        );
        assert!(body.len() <= config.server.max_body_bytes);
        let d = Delivery::parse(&req, body.as_bytes()).expect("valid");
        let mut headers =
            record::headers(&req, &d, &mid, &config.cloudevents, SystemTime::UNIX_EPOCH);
        headers = headers.insert(rdkafka::message::Header {
            key: crate::webhook::DEAD_LETTER_REASON,
            value: Some("not_object"),
        });
        let key = d.key().map(bounded_key).expect("key");
        assert!(key.len() <= MAX_KEY_BYTES, "{}", key.len());
        // Kafka's record: value, key, each header's name and value with
        // two length varints (at most 5 bytes each), record framing and
        // the batch header.
        let header_bytes: usize = headers
            .iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len) + 10)
            .sum();
        let size = body.len() + key.len() + header_bytes + 40 + 61;
        assert!(size <= limit, "{size} > {limit}");
    }
}
