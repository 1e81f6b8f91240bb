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
use crate::kafka::transactions::{GroupCommit, LineWriter, Withdrawal};
use crate::labels::RecordWriter;
use crate::receipt::Receipt;
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

/// Longest record key. POPBiLL's keys (`corpNum:itemKey`) are under 30
/// bytes; a longer one (its parts come from the body) is replaced by its
/// digest, which keeps one document's events on one partition and the
/// record's size bounded.
pub(crate) const MAX_KEY_BYTES: usize = 256;

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
    pub(crate) max_header_bytes: usize,
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

/// A delivery's record key: as [`Delivery::key`] gives it, or its digest
/// when longer than [`MAX_KEY_BYTES`]. (Public for the bench's floor,
/// which writes the bridge's record.)
pub fn record_key<'a>(delivery: &Delivery<'a>) -> Option<Cow<'a, str>> {
    delivery.key().map(bounded_key)
}

/// A record's timestamp: when the delivery was received, in milliseconds
/// since the Unix epoch (0 before it).
pub fn record_timestamp(received_at: SystemTime) -> i64 {
    received_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `key`, or its digest when longer than [`MAX_KEY_BYTES`].
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
pub(crate) fn create_producer(
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

pub(crate) struct Publisher {
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

    /// Hands the delivery to the producer (into the open transaction,
    /// with its ledger line, when transactions are on). Never waits: a full
    /// queue is an answer (503), not a hang while POPBiLL's connection
    /// times out.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enqueue(
        &self,
        topic: &Arc<str>,
        delivery: &Delivery<'_>,
        id: &str,
        request_headers: &hyper::HeaderMap,
        extra_header: Option<(&str, &str)>,
        received_at: SystemTime,
        ledger_line: Option<&LineWriter<'_>>,
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
        let key = record_key(delivery);
        let timestamp = record_timestamp(received_at);
        let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic.as_ref())
            .payload(delivery.body)
            .headers(headers)
            .timestamp(timestamp);
        if let Some(k) = key.as_deref() {
            rec = rec.key(k);
        }
        let (report, withdrawal) = match &self.transactions {
            Some(group) => {
                let (verdict, withdrawal) = group.send(rec, topic, ledger_line)?;
                (Report::Transaction(verdict), Some(withdrawal))
            }
            None => (
                Report::Record(
                    self.producer
                        .send_result(rec)
                        .map_err(|(e, _)| BridgeError::from_kafka(e, topic))?,
                ),
                None,
            ),
        };
        Ok(Pending {
            report,
            withdrawal,
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
pub(crate) struct Pending {
    report: Report,
    /// With transactions: dropped by the request when it stops waiting.
    withdrawal: Option<Withdrawal>,
    topic: Arc<str>,
    started: Instant,
    metrics: Arc<Metrics>,
}

/// Resolves with Kafka's verdict. librdkafka always reports within
/// `message.timeout.ms`, so this ends without a timer of its own.
impl Pending {
    /// When the record was handed to the producer: the end of the
    /// handover, the start of the wait for Kafka's report.
    pub(crate) fn handed_at(&self) -> Instant {
        self.started
    }

    /// The request's hold on its place in a transaction: kept while the
    /// request waits; a request that stops waiting drops it (see
    /// [`Withdrawal`]). None without transactions.
    pub(crate) fn take_withdrawal(&mut self) -> Option<Withdrawal> {
        self.withdrawal.take()
    }
}

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
mod tests;
