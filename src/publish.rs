//! Publish: hand one delivery to Kafka and wait for the delivery report.
//!
//! The producer is idempotent with `acks=all`, so a confirmed write is on
//! every in-sync replica and librdkafka's own retries never duplicate it.
//! `message.timeout.ms` sits below the HTTP deadline: librdkafka gives up and
//! reports before we must answer, so the answer is always the real outcome.
//! The caller's wait is still bounded by the deadline, as a second line of
//! defence.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::time::Instant;

use crate::config::{CloudEventsConfig, KafkaConfig};
use crate::delivery::Delivery;
use crate::error::BridgeError;
use crate::metrics::Metrics;
use crate::record;

/// Where Kafka put the record.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    pub partition: i32,
    pub offset: i64,
}

/// librdkafka callbacks: statistics become gauges, its log lines become
/// tracing events (through the `log` bridge of tracing-subscriber).
pub struct KafkaContext {
    metrics: Arc<Metrics>,
}

impl ClientContext for KafkaContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.metrics.record_kafka_stats(&statistics);
    }
}

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

pub fn create_producer(cfg: &KafkaConfig, metrics: Arc<Metrics>) -> KafkaResult<Producer> {
    let mut c = base_client_config(cfg);
    // A bounded queue: when Kafka is slow, a full queue answers 503 at once
    // instead of holding bodies without limit. Overridable via properties.
    if !cfg.properties.contains_key("queue.buffering.max.kbytes") {
        c.set("queue.buffering.max.kbytes", "65536");
    }
    c.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", millis(cfg.message_timeout))
        .set("statistics.interval.ms", millis(cfg.statistics_interval));
    c.create_with_context(KafkaContext { metrics })
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
        let key = delivery.key();
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

/// A record handed to the producer, waiting for its delivery report. It is
/// awaited in a task of its own, so a client that hangs up does not stop
/// the bridge from learning (and remembering) how the write ended.
pub struct Pending {
    report: DeliveryFuture,
    topic: Arc<str>,
    started: Instant,
    metrics: Arc<Metrics>,
}

impl Pending {
    /// Waits for Kafka's verdict. librdkafka always reports within
    /// `message.timeout.ms`, so this ends without a timer of its own.
    pub async fn confirmed(self) -> Result<Receipt, BridgeError> {
        let result = self.report.await;
        self.metrics
            .publish_duration
            .observe(self.started.elapsed().as_secs_f64());
        match result {
            // The producer dropped the report: only while it is torn down.
            Err(_canceled) => Err(BridgeError::ShuttingDown),
            Ok(Err((e, _msg))) => Err(BridgeError::from_kafka(e, &self.topic)),
            Ok(Ok(d)) => Ok(Receipt {
                partition: d.partition,
                offset: d.offset,
            }),
        }
    }
}
