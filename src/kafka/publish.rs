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

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use crate::delivery::Delivery;
use crate::error::BridgeError;
use crate::kafka::KafkaConfig;
use crate::kafka::client::{ClientEvents, KafkaContext, Producer, base_client_config};
use crate::kafka::record;
use crate::kafka::record::CloudEventsConfig;
use crate::kafka::transactions::GroupCommit;
use crate::labels::RecordWriter;
use crate::receipt::Receipt;
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

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
    producer_config(cfg, max_record_bytes)
        .create_with_context(KafkaContext::idempotent_producer(metrics, events))
}

/// The producer's settings, apart from its context: also what the
/// benchmark's ceiling and minimal bridge produce with, so that they
/// compare with the bridge's very settings.
pub fn producer_config(cfg: &KafkaConfig, max_record_bytes: usize) -> ClientConfig {
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
    c
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

pub struct Publisher {
    producer: Producer,
    /// With `kafka.transactions` on: the writers every record goes through.
    transactions: Option<Arc<GroupCommit>>,
    cloudevents: CloudEventsConfig,
    metrics: Arc<Metrics>,
}

impl Publisher {
    pub(crate) fn new(
        producer: Producer,
        transactions: Option<Arc<GroupCommit>>,
        cloudevents: CloudEventsConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Publisher {
            producer,
            transactions,
            cloudevents,
            metrics,
        }
    }

    /// Whether records go through Kafka transactions (their ledger lines
    /// with them).
    pub fn transactional(&self) -> bool {
        self.transactions.is_some()
    }

    /// Hands the delivery to the producer (into the open transaction,
    /// with its ledger line, when transactions are on). Never waits: a full
    /// queue is an answer (503), not a hang while POPBiLL's connection
    /// times out.
    #[allow(clippy::too_many_arguments)]
    pub fn enqueue(
        &self,
        topic: &Arc<str>,
        delivery: &Delivery<'_>,
        id: &str,
        request_headers: &hyper::HeaderMap,
        extra_header: Option<(&str, &str)>,
        received_at: SystemTime,
        ledger_line: Option<&[u8]>,
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
        let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic.as_ref())
            .payload(delivery.body)
            .headers(headers)
            .timestamp(timestamp);
        if let Some(k) = key.as_deref() {
            rec = rec.key(k);
        }
        let report = match &self.transactions {
            Some(group) => Report::Transaction(group.send(rec, topic, ledger_line)?),
            None => Report::Record(
                self.producer
                    .send_result(rec)
                    .map_err(|(e, _)| BridgeError::from_kafka(e, topic))?,
            ),
        };
        Ok(Pending {
            report,
            topic: topic.clone(),
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
    report: Report,
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
        let verdict = match &mut self.report {
            Report::Record(r) => {
                let result = std::task::ready!(std::pin::Pin::new(r).poll(cx));
                verdict_of(result, &self.topic, &self.metrics)
            }
            // The group commit answers every member; a closed channel means
            // its task was dropped, only while the runtime ends.
            Report::Transaction(r) => std::task::ready!(std::pin::Pin::new(r).poll(cx))
                .unwrap_or_else(|_| Err(Arc::new(BridgeError::ShuttingDown))),
        };
        self.metrics.observe_publish(self.started.elapsed());
        std::task::Poll::Ready(verdict)
    }
}

/// What a [`Pending`] waits for: the record's own delivery report, or the
/// verdict of the transaction it was written in.
enum Report {
    Record(DeliveryFuture),
    Transaction(tokio::sync::oneshot::Receiver<Result<Receipt, Arc<BridgeError>>>),
}

/// Kafka's verdict from a delivery report: a [`Receipt`] only when the
/// report proves the write (see [`crate::receipt`]); a report that
/// says "delivered" without an offset is a failure, answered 503.
/// `Err(_)`: the report was dropped unsent (futures' `Canceled`).
pub(crate) fn verdict_of<Canceled>(
    result: Result<OwnedDeliveryResult, Canceled>,
    topic: &str,
    metrics: &Metrics,
) -> Result<Receipt, Arc<BridgeError>> {
    match result {
        // The producer dropped the report: only while it is torn down.
        Err(_canceled) => Err(Arc::new(BridgeError::ShuttingDown)),
        Ok(Err((e, _msg))) => Err(Arc::new(BridgeError::from_kafka(e, topic))),
        Ok(Ok(d)) => Receipt::from_report(d.partition, d.offset).map_err(|unconfirmed| {
            events::unconfirmed_report(metrics, RecordWriter::Delivery, topic, unconfirmed);
            Arc::new(BridgeError::Unconfirmed {
                topic: topic.to_string(),
                partition: unconfirmed.partition,
                offset: unconfirmed.offset,
            })
        }),
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

    // --- record bound, key, producer settings, delivery reports ---------

    use rdkafka::producer::Producer as _;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    use crate::error::{FailReason, Kind};

    use crate::kafka::mock::with_topics as mock;

    fn kafka_config(brokers: &str, message_timeout: Duration) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.to_string(),
            message_timeout,
            statistics_interval: Duration::ZERO,
            ..KafkaConfig::default()
        }
    }

    fn publisher(cfg: &KafkaConfig, max_record_bytes: usize) -> Publisher {
        let metrics = Arc::new(Metrics::new(&[]));
        let producer = create_producer(cfg, max_record_bytes, metrics.clone(), Default::default())
            .expect("producer");
        Publisher::new(producer, None, CloudEventsConfig::default(), metrics)
    }

    fn issue_headers() -> HeaderMap {
        let mut h = hyper::HeaderMap::new();
        h.insert(
            "pb-webhook-type",
            HeaderValue::from_static("TAXINVOICE.STATE"),
        );
        h.insert("pb-webhook-mid", HeaderValue::from_static("mid-1"));
        h.insert("pb-webhook-eventtype", HeaderValue::from_static("Issue"));
        h
    }

    const ISSUE_BODY: &[u8] =
        br#"{"corpNum":"1234567890","itemKey":"025111409301000001","eventType":"Issue"}"#;

    /// A delivery whose body is `body`, as it reaches `enqueue`.
    fn delivery<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Delivery<'a> {
        Delivery::raw(headers, body)
    }

    fn enqueue(p: &Publisher, topic: &str, body: &[u8]) -> Result<Pending, BridgeError> {
        let headers = issue_headers();
        p.enqueue(
            &topic.into(),
            &delivery(&headers, body),
            "mid-1",
            &headers,
            None,
            SystemTime::now(),
            None,
        )
    }

    async fn confirmed(pending: Pending) -> Result<Receipt, Arc<BridgeError>> {
        tokio::time::timeout(Duration::from_secs(5), pending)
            .await
            .expect("a delivery report within message.timeout.ms")
    }

    #[test]
    fn max_record_bytes_grows_with_each_bound() {
        let b = RecordBounds {
            max_body_bytes: 1000,
            max_header_bytes: 8192,
            max_headers: 10,
        };
        let ce = CloudEventsConfig::default();
        let base = max_record_bytes(&b, &ce);
        assert!(base > b.max_body_bytes + 2 * b.max_header_bytes, "{base}");
        let bigger = |f: fn(&mut RecordBounds)| {
            let mut b = b;
            f(&mut b);
            max_record_bytes(&b, &ce)
        };
        assert_eq!(bigger(|b| b.max_body_bytes += 1), base + 1, "the body once");
        assert_eq!(
            bigger(|b| b.max_header_bytes += 1),
            base + 2,
            "the head twice (the MID comes back as ce_id)"
        );
        assert_eq!(
            bigger(|b| b.max_headers += 1),
            base + 10,
            "two length varints per header"
        );
        let longer = |f: fn(&mut CloudEventsConfig)| {
            let mut ce = ce.clone();
            f(&mut ce);
            max_record_bytes(&b, &ce)
        };
        assert_eq!(longer(|c| c.source.push_str("/x")), base + 2);
        assert_eq!(longer(|c| c.type_prefix.push_str(".x")), base + 2);
    }

    #[test]
    fn bounded_key_keeps_a_key_up_to_the_limit_and_hashes_a_longer_one() {
        let short = "1234567890:025111409301000001";
        assert!(matches!(bounded_key(Cow::Borrowed(short)), Cow::Borrowed(k) if k == short));
        let at_limit = "k".repeat(MAX_KEY_BYTES);
        assert_eq!(bounded_key(Cow::Borrowed(&at_limit)), at_limit.as_str());

        let long = "k".repeat(MAX_KEY_BYTES + 1);
        let hashed = bounded_key(Cow::Borrowed(&long));
        assert!(hashed.starts_with("sha256:"), "{hashed}");
        assert_eq!(hashed.len(), "sha256:".len() + 32, "{hashed}");
        assert!(hashed.len() <= MAX_KEY_BYTES);
        // One document, one partition: the same long key, the same digest;
        // another long key, another digest.
        assert_eq!(hashed, bounded_key(Cow::Owned(long.clone())));
        let other = format!("{long}x");
        assert_ne!(hashed, bounded_key(Cow::Borrowed(&other)));
    }

    #[tokio::test]
    async fn create_producer_raises_message_max_bytes_to_the_record_bound() {
        let cluster = mock(&["t"]);
        let bound = 1_500_000;
        let p = publisher(
            &kafka_config(&cluster.bootstrap_servers(), Duration::from_secs(2)),
            bound,
        );
        // Above librdkafka's default (1,000,000), within the bound: taken.
        enqueue(&p, "t", &vec![b'x'; 1_200_000]).expect("a record within the bound is taken");
        // Above the bound: refused at once, as the bridge's own error.
        let too_big = enqueue(&p, "t", &vec![b'x'; bound + 1]).err();
        assert!(
            matches!(&too_big, Some(BridgeError::RecordTooLarge { topic }) if topic == "t"),
            "{too_big:?}"
        );
    }

    #[tokio::test]
    async fn create_producer_keeps_a_larger_configured_message_max_bytes_and_ignores_a_smaller_one()
    {
        let cluster = mock(&["t"]);
        let brokers = cluster.bootstrap_servers();
        let with = |value: &str| {
            let mut cfg = kafka_config(&brokers, Duration::from_secs(2));
            cfg.properties
                .insert("message.max.bytes".into(), value.into());
            cfg
        };
        let p = publisher(&with("3000000"), 1_100_000);
        enqueue(&p, "t", &vec![b'x'; 2_000_000]).expect("the larger configured value is kept");

        let p = publisher(&with("500000"), 1_500_000);
        enqueue(&p, "t", &vec![b'x'; 1_200_000]).expect("a smaller configured value gives way");
    }

    #[tokio::test]
    async fn a_record_enqueued_to_the_mock_cluster_is_confirmed_with_partition_and_offset() {
        let cluster = mock(&["t"]);
        let p = publisher(
            &kafka_config(&cluster.bootstrap_servers(), Duration::from_secs(2)),
            1_100_000,
        );
        let first = confirmed(enqueue(&p, "t", ISSUE_BODY).expect("enqueued"))
            .await
            .expect("confirmed");
        let second = confirmed(enqueue(&p, "t", ISSUE_BODY).expect("enqueued"))
            .await
            .expect("confirmed");
        assert_eq!((first.partition(), first.offset()), (0, 0));
        assert_eq!((second.partition(), second.offset()), (0, 1));
    }

    /// librdkafka's implicit acknowledgement (issue #19): a report with no
    /// error and offset -1001. It must be a 503 `unconfirmed`, counted, and
    /// never a receipt that would be answered `OK` and remembered.
    #[test]
    fn a_success_report_without_an_offset_is_a_503_unconfirmed_not_a_receipt() {
        let metrics = Metrics::new(&[]);
        let implicit_ack: Result<OwnedDeliveryResult, ()> =
            Ok(Ok(rdkafka::producer::future_producer::Delivery {
                partition: 1,
                offset: -1001,
                timestamp: rdkafka::Timestamp::NotAvailable,
            }));
        let e = verdict_of(implicit_ack, "t", &metrics).expect_err("no offset, no receipt");
        assert_eq!(e.kind(), Kind::Failed(FailReason::Unconfirmed), "{e:?}");
        let answer = crate::http::answer::failure(&e, Duration::from_secs(30));
        assert_eq!(answer.status(), hyper::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()[hyper::header::RETRY_AFTER], "30");
        let text = String::from_utf8(metrics.render()).expect("utf-8");
        assert!(
            text.contains("popbill_bridge_kafka_unconfirmed_reports_total{writer=\"delivery\"} 1"),
            "{text}"
        );

        let stored: Result<OwnedDeliveryResult, ()> =
            Ok(Ok(rdkafka::producer::future_producer::Delivery {
                partition: 1,
                offset: 0,
                timestamp: rdkafka::Timestamp::NotAvailable,
            }));
        let r = verdict_of(stored, "t", &metrics).expect("an offset is proof");
        assert_eq!((r.partition(), r.offset()), (1, 0));
    }

    /// Issue #19, the real thing on librdkafka's mock cluster: the first
    /// produce request to a partition this producer never wrote to fails
    /// NOT_LEADER while the next ones, already in flight, succeed (the
    /// broker takes any first sequence on a partition new to the
    /// producer). librdkafka then reports the first record delivered with
    /// offset -1001 (IMPLICITACK), though the log never got it. It must
    /// be unconfirmed; every other record has its offset.
    #[tokio::test]
    async fn librdkafkas_implicit_ack_of_a_record_never_stored_is_unconfirmed() {
        let cluster = mock(&["fresh", "warm"]);
        let mut cfg = kafka_config(&cluster.bootstrap_servers(), Duration::from_secs(3));
        // One record a request, so that several are in flight at once.
        for (k, v) in [("linger.ms", "0"), ("batch.num.messages", "1")] {
            cfg.properties.insert(k.into(), v.into());
        }
        let p = publisher(&cfg, 1_100_000);
        // The producer has its ID, and has written nothing to `fresh`.
        confirmed(enqueue(&p, "warm", ISSUE_BODY).expect("enqueued"))
            .await
            .expect("a healthy cluster confirms");
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION],
        );
        // Answers come late enough that all five requests are in flight
        // before the first one's NOT_LEADER is back.
        cluster
            .broker_round_trip_time(1, Duration::from_millis(150))
            .expect("rtt");
        let pending: Vec<Pending> = (0..5)
            .map(|_| enqueue(&p, "fresh", ISSUE_BODY).expect("enqueued"))
            .collect();
        let mut verdicts = Vec::new();
        for f in pending {
            verdicts.push(confirmed(f).await);
        }
        let first = verdicts[0]
            .as_ref()
            .expect_err("the implicitly acked record");
        assert!(
            matches!(&**first, BridgeError::Unconfirmed { topic, offset, .. }
                if topic == "fresh" && *offset == -1001),
            "{first:?}"
        );
        let offsets: Vec<i64> = verdicts[1..]
            .iter()
            .map(|v| v.as_ref().expect("stored, with its offset").offset())
            .collect();
        assert_eq!(offsets, [0, 1, 2, 3]);
        // Four records in the log: the unconfirmed one is not there.
        let (_, high) = p
            .producer
            .client()
            .fetch_watermarks("fresh", 0, Duration::from_secs(2))
            .expect("watermarks");
        assert_eq!(high, 4);
        let text = String::from_utf8(p.metrics.render()).expect("utf-8");
        assert!(
            text.contains("popbill_bridge_kafka_unconfirmed_reports_total{writer=\"delivery\"} 1"),
            "{text}"
        );
    }

    /// Kafka's verdict on one record while every produce request gets
    /// `error`, with `properties` added to the producer's configuration.
    async fn verdict_under(error: RDKafkaRespErr, properties: &[(&str, &str)]) -> Arc<BridgeError> {
        let cluster = mock(&["t"]);
        // Long enough for the warm-up below to succeed even when the mock
        // cluster is a second late; these errors end the record at once.
        let mut cfg = kafka_config(&cluster.bootstrap_servers(), Duration::from_millis(1500));
        for (k, v) in properties {
            cfg.properties.insert(k.to_string(), v.to_string());
        }
        let p = publisher(&cfg, 1_100_000);
        // A first record confirmed: the producer is connected and has its
        // producer id, so what follows depends on `error` only.
        confirmed(enqueue(&p, "t", ISSUE_BODY).expect("enqueued"))
            .await
            .expect("a healthy cluster confirms");
        cluster.request_errors(RDKafkaApiKey::Produce, &[error; 100]);
        confirmed(enqueue(&p, "t", ISSUE_BODY).expect("enqueued"))
            .await
            .expect_err("never confirmed")
    }

    #[tokio::test]
    async fn not_enough_replicas_on_the_last_retry_fails_as_kafka_error() {
        let e = verdict_under(
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            &[("message.send.max.retries", "1")],
        )
        .await;
        assert_eq!(e.kind(), Kind::Failed(FailReason::KafkaError), "{e:?}");
        assert!(e.to_string().contains("refused"), "{e}");
    }

    #[tokio::test]
    async fn not_enough_replicas_with_unbounded_retries_fails_as_timeout_at_message_timeout() {
        // librdkafka retries a retriable error until message.timeout.ms:
        // the report then says the message timed out.
        let cluster = mock(&["t"]);
        let cfg = kafka_config(&cluster.bootstrap_servers(), Duration::from_millis(800));
        let p = publisher(&cfg, 1_100_000);
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 100],
        );
        let started = Instant::now();
        let e = confirmed(enqueue(&p, "t", ISSUE_BODY).expect("enqueued"))
            .await
            .expect_err("never confirmed");
        assert_eq!(e.kind(), Kind::Failed(FailReason::Timeout), "{e:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(750),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_topic_authorization_refusal_fails_as_kafka_error() {
        let e = verdict_under(
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            &[],
        )
        .await;
        assert_eq!(e.kind(), Kind::Failed(FailReason::KafkaError), "{e:?}");
    }

    #[tokio::test]
    async fn a_broker_refusing_the_record_size_fails_as_record_too_large_naming_the_topic() {
        let e = verdict_under(RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, &[]).await;
        assert!(
            matches!(&*e, BridgeError::RecordTooLarge { topic } if topic == "t"),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_broker_that_does_not_answer_within_message_timeout_fails_as_timeout() {
        let cluster = mock(&["t"]);
        let p = publisher(
            &kafka_config(&cluster.bootstrap_servers(), Duration::from_millis(300)),
            1_100_000,
        );
        cluster
            .broker_round_trip_time(1, Duration::from_secs(3))
            .expect("rtt");
        let e = confirmed(enqueue(&p, "t", ISSUE_BODY).expect("enqueued"))
            .await
            .expect_err("never confirmed");
        assert_eq!(e.kind(), Kind::Failed(FailReason::Timeout), "{e:?}");
    }
}
