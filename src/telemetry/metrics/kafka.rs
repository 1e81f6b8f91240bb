//! Kafka's metrics: whether the cluster answers, topics missing or set up
//! against the bridge's promises, and what the producers' librdkafka
//! statistics say (queue, request errors and retries, brokers' state and
//! round-trip).

use std::sync::Mutex;

use prometheus::{GaugeVec, IntCounter, IntGauge, IntGaugeVec, Registry};

use crate::telemetry::metrics::{Metrics, clamp, counter, gauge, opts, register};

pub(super) struct KafkaMetrics {
    pub(super) kafka_up: IntGauge,
    pub(super) topics_missing: IntGauge,
    pub(super) partitions_under_min_isr: IntGauge,
    pub(super) kafka_config_problems: IntGauge,
    pub(super) kafka_queue_messages: IntGauge,
    pub(super) kafka_queue_bytes: IntGauge,
    pub(super) kafka_broker_rtt_avg: GaugeVec,
    pub(super) kafka_broker_rtt_p99: GaugeVec,
    pub(super) kafka_broker_queue_latency_avg: GaugeVec,
    pub(super) kafka_broker_queue_latency_p99: GaugeVec,
    pub(super) kafka_broker_up: IntGaugeVec,
    pub(super) kafka_tx_errors: IntCounter,
    pub(super) kafka_tx_retries: IntCounter,
    pub(super) brokers: Mutex<std::collections::HashMap<String, ClientTotals>>,
}

/// What one producer's last statistics report said (see
/// [`Metrics::record_kafka_stats`]).
#[derive(Default)]
pub(super) struct ClientTotals {
    /// Messages and bytes in its queue.
    queue: (u64, u64),
    /// Broker name → (txerrs, txretries).
    brokers: std::collections::HashMap<String, (u64, u64)>,
}

impl KafkaMetrics {
    pub(super) fn new(registry: &Registry) -> KafkaMetrics {
        let kafka_up = gauge(
            registry,
            "kafka_up",
            "1 when the last metadata request to Kafka succeeded, else 0.",
        );
        let topics_missing = gauge(
            registry,
            "topics_missing",
            "Routed topics known not to exist (or not yet confirmed) in Kafka.",
        );
        let partitions_under_min_isr = gauge(
            registry,
            "kafka_partitions_under_min_isr",
            "Partitions of the routed topics with fewer in-sync replicas than their min.insync.replicas: every write to them fails (NOT_ENOUGH_REPLICAS).",
        );
        let kafka_config_problems = gauge(
            registry,
            "kafka_config_problems",
            "Topic settings that break a promise of the bridge (record size, min.insync.replicas, ledger retention); /readyz lists them.",
        );
        let kafka_queue_messages = gauge(
            registry,
            "kafka_producer_queue_messages",
            "Records in the producer queue waiting for Kafka (librdkafka msg_cnt).",
        );
        let kafka_queue_bytes = gauge(
            registry,
            "kafka_producer_queue_bytes",
            "Bytes in the producer queue waiting for Kafka (librdkafka msg_size).",
        );
        let broker_gauge = |name: &str, help: &str| {
            register(
                registry,
                GaugeVec::new(opts(name, help), &["broker"]).expect("static metric definition"),
            )
        };
        let kafka_broker_rtt_avg = broker_gauge(
            "kafka_broker_rtt_avg_seconds",
            "Average broker round-trip time over the last statistics window.",
        );
        let kafka_broker_rtt_p99 = broker_gauge(
            "kafka_broker_rtt_p99_seconds",
            "99th percentile broker round-trip time over the last statistics window.",
        );
        // With the round-trip, what a record's wait for its report is made
        // of: the queue (librdkafka int_latency: linger and batching) and
        // then the broker.
        let kafka_broker_queue_latency_avg = broker_gauge(
            "kafka_broker_queue_latency_avg_seconds",
            "Average time a record waited in the producer's queue for this broker before it \
             was put in a produce request, over the last statistics window (librdkafka \
             int_latency).",
        );
        let kafka_broker_queue_latency_p99 = broker_gauge(
            "kafka_broker_queue_latency_p99_seconds",
            "99th percentile time a record waited in the producer's queue for this broker \
             before it was put in a produce request, over the last statistics window \
             (librdkafka int_latency).",
        );
        let kafka_broker_up = register(
            registry,
            IntGaugeVec::new(
                opts(
                    "kafka_broker_up",
                    "1 when the producer's connection to the broker is UP.",
                ),
                &["broker"],
            )
            .expect("static metric definition"),
        );
        let kafka_tx_errors = counter(
            registry,
            "kafka_producer_request_errors_total",
            "Produce request errors to brokers (librdkafka txerrs, summed over brokers).",
        );
        let kafka_tx_retries = counter(
            registry,
            "kafka_producer_request_retries_total",
            "Produce request retries to brokers (librdkafka txretries, summed over brokers).",
        );
        KafkaMetrics {
            kafka_up,
            topics_missing,
            partitions_under_min_isr,
            kafka_config_problems,
            kafka_queue_messages,
            kafka_queue_bytes,
            kafka_broker_rtt_avg,
            kafka_broker_rtt_p99,
            kafka_broker_queue_latency_avg,
            kafka_broker_queue_latency_p99,
            kafka_broker_up,
            kafka_tx_errors,
            kafka_tx_retries,
            brokers: Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl Metrics {
    /// Topics a delivery can go to that are not known to exist, as of the
    /// last readiness round.
    pub(crate) fn set_topics_missing(&self, n: usize) {
        self.topics_missing.set(clamp(n as u64));
    }

    /// Partitions of the routed topics below their min.insync.replicas, as
    /// of the last readiness round.
    pub(crate) fn set_partitions_under_min_isr(&self, n: usize) {
        self.partitions_under_min_isr.set(clamp(n as u64));
    }

    /// Topic settings that break a promise, as of the last check.
    pub(crate) fn set_kafka_config_problems(&self, n: usize) {
        self.kafka_config_problems.set(clamp(n as u64));
    }

    /// Applies one producer's librdkafka statistics report. Several
    /// producers report (the transactional writers, and the producer the
    /// topic checks use): the queue gauges are their sum, the per-broker
    /// figures the latest any of them saw, the error and retry counters
    /// the sum of what is new in each.
    pub(crate) fn record_kafka_stats(&self, stats: &rdkafka::Statistics) {
        let Ok(mut clients) = self.brokers.lock() else {
            return;
        };
        let last = clients.entry(stats.name.clone()).or_default();
        last.queue = (stats.msg_cnt, stats.msg_size);
        let (mut errors, mut retries) = (0u64, 0u64);
        let mut now = std::collections::HashMap::with_capacity(stats.brokers.len());
        for (name, b) in &stats.brokers {
            // librdkafka's totals only grow per broker; a broker that left
            // and came back starts again from zero.
            let (e0, r0) = last.brokers.get(name).copied().unwrap_or((0, 0));
            errors += b.txerrs.saturating_sub(e0);
            retries += b.txretries.saturating_sub(r0);
            now.insert(name.clone(), (b.txerrs, b.txretries));
            // Bootstrap and internal pseudo-brokers carry no useful figures.
            if b.nodeid < 0 {
                continue;
            }
            let name = name.as_str();
            self.kafka_broker_up
                .with_label_values(&[name])
                .set(i64::from(b.state == "UP"));
            // A window without samples (a producer that wrote nothing to
            // this broker lately: the plain producer, with transactions on)
            // says nothing, and must not overwrite what another saw.
            // librdkafka's windows are in microseconds.
            let set = |avg: &GaugeVec, p99: &GaugeVec, w: &Option<rdkafka::statistics::Window>| {
                if let Some(w) = w.as_ref().filter(|w| w.cnt > 0) {
                    avg.with_label_values(&[name]).set(w.avg as f64 / 1e6);
                    p99.with_label_values(&[name]).set(w.p99 as f64 / 1e6);
                }
            };
            set(
                &self.kafka_broker_rtt_avg,
                &self.kafka_broker_rtt_p99,
                &b.rtt,
            );
            set(
                &self.kafka_broker_queue_latency_avg,
                &self.kafka_broker_queue_latency_p99,
                &b.int_latency,
            );
        }
        self.kafka_tx_errors.inc_by(errors);
        self.kafka_tx_retries.inc_by(retries);
        let gone: Vec<String> = last
            .brokers
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        last.brokers = now;
        for gone in gone
            .iter()
            .filter(|g| !clients.values().any(|c| c.brokers.contains_key(*g)))
        {
            let _ = self.kafka_broker_up.remove_label_values(&[gone]);
            for windows in [
                &self.kafka_broker_rtt_avg,
                &self.kafka_broker_rtt_p99,
                &self.kafka_broker_queue_latency_avg,
                &self.kafka_broker_queue_latency_p99,
            ] {
                let _ = windows.remove_label_values(&[gone]);
            }
        }
        let (messages, bytes) = clients
            .values()
            .fold((0u64, 0u64), |(m, b), c| (m + c.queue.0, b + c.queue.1));
        self.kafka_queue_messages.set(clamp(messages));
        self.kafka_queue_bytes.set(clamp(bytes));
    }
}
