//! Every Prometheus metric the bridge exports, in one registry per bridge
//! (not the global one, so two bridges in one test process do not mix).
//!
//! Label values are bounded by construction: outcomes and reasons are enums,
//! `event_type` is a configured route label or `other`, `broker` is one of
//! the cluster's brokers. Counters for every combination are created at
//! start-up, so dashboards see zeros instead of missing series, and the hot
//! path increments pre-resolved handles instead of looking labels up.
//!
//! One family of metrics a module, each with its constructor and the
//! methods that set its metrics: [`deliveries`], [`http`], [`kafka`],
//! [`dedup`], [`transactions`]. [`Metrics::new`] composes them; the
//! handles stay fields of [`Metrics`] itself, where the events
//! (`crate::telemetry::events`) reach them.

mod dedup;
mod deliveries;
mod http;
mod kafka;
mod transactions;

use std::sync::Mutex;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder, core::Collector,
};

use self::dedup::DedupMetrics;
use self::deliveries::{DeliveryMetrics, OutcomeCounters};
use self::http::HttpMetrics;
use self::kafka::{ClientTotals, KafkaMetrics};
use self::transactions::TransactionMetrics;
use crate::route::Route;

const NS: &str = "popbill_bridge";

/// Latency buckets from half a millisecond (a healthy local broker) to the
/// longest deadline anyone should configure.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The bridge's metrics: a handle for every series, resolved at start-up,
/// and the registry `/metrics` renders.
pub struct Metrics {
    pub(super) registry: Registry,
    /// Indexed by route id; the last entry doubles as the `other` label.
    pub(super) by_route: Vec<OutcomeCounters>,
    pub(super) other: OutcomeCounters,
    pub(super) rejections: Vec<IntCounter>,
    pub(super) dead_letters: Vec<IntCounter>,
    pub(super) publish_failures: Vec<IntCounter>,
    pub(super) unconfirmed_reports: Vec<IntCounter>,
    pub(super) publish_duration: Histogram,
    pub(super) request_duration: Histogram,
    pub(super) handover_duration: Histogram,
    pub(super) inflight: IntGauge,
    pub(super) body_buffer_bytes: IntGauge,
    pub(super) kafka_up: IntGauge,
    pub(super) topics_missing: IntGauge,
    pub(super) partitions_under_min_isr: IntGauge,
    pub(super) kafka_config_problems: IntGauge,
    pub(super) kafka_queue_messages: IntGauge,
    pub(super) kafka_queue_bytes: IntGauge,
    pub(super) kafka_broker_rtt_avg: prometheus::GaugeVec,
    kafka_broker_rtt_p99: prometheus::GaugeVec,
    kafka_broker_queue_latency_avg: prometheus::GaugeVec,
    kafka_broker_queue_latency_p99: prometheus::GaugeVec,
    pub(super) kafka_broker_up: IntGaugeVec,
    pub(super) kafka_tx_errors: IntCounter,
    pub(super) kafka_tx_retries: IntCounter,
    /// Per producer (librdkafka's client name), what its last statistics
    /// report said: its queue, and its brokers with their running totals
    /// (txerrs, txretries). The counters above move by what is new, and
    /// the gauges of a broker no producer reports any more are removed.
    brokers: Mutex<std::collections::HashMap<String, ClientTotals>>,
    pub(super) open_connections: IntGauge,
    pub(super) http_errors: Vec<IntCounter>,
    pub(super) connections_rejected: IntCounter,
    pub(super) slot_waits: IntCounter,
    pub(super) tls_handshake_failures: IntCounter,
    pub(super) auth_reload_failures: IntCounter,
    pub(super) dedup_remembered: IntGauge,
    pub(super) dedup_memory_bytes: IntGauge,
    pub(super) dedup_evicted: IntCounter,
    pub(super) dedup_ledger_writes: IntCounter,
    pub(super) dedup_ledger_write_failures: IntCounter,
    pub(super) dedup_ledger_caught_up: IntGauge,
    pub(super) dedup_conflicts: IntCounter,
    pub(super) transactions: TransactionMetrics,
    /// Mirrors the log output's own count, brought up to date at each
    /// scrape (the output cannot reach a bridge's registry), under the
    /// lock so that two scrapes at once do not both add the same lines.
    log_lines_dropped: Mutex<IntCounter>,
}

impl Metrics {
    pub fn new(routes: &[Route]) -> Metrics {
        let registry = Registry::new();
        // process_resident_memory_bytes, open fds, CPU seconds, start time:
        // what an operator checks first (Linux only, where the bridge runs).
        #[cfg(target_os = "linux")]
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        let deliveries = DeliveryMetrics::new(&registry, routes);
        let kafka = KafkaMetrics::new(&registry);
        let http = HttpMetrics::new(&registry);
        let dedup = DedupMetrics::new(&registry);
        register_build_info(&registry);
        let transactions = TransactionMetrics::new(&registry);
        let log_lines_dropped = counter(
            &registry,
            "log_lines_dropped_total",
            "Log lines dropped because stdout did not take them in time (a stuck log \
             collector) or failed: the bridge drops lines rather than stop deliveries.",
        );
        Metrics {
            registry,
            by_route: deliveries.by_route,
            other: deliveries.other,
            rejections: deliveries.rejections,
            dead_letters: deliveries.dead_letters,
            publish_failures: deliveries.publish_failures,
            unconfirmed_reports: deliveries.unconfirmed_reports,
            publish_duration: deliveries.publish_duration,
            request_duration: deliveries.request_duration,
            handover_duration: deliveries.handover_duration,
            inflight: http.inflight,
            body_buffer_bytes: http.body_buffer_bytes,
            kafka_up: kafka.kafka_up,
            topics_missing: kafka.topics_missing,
            partitions_under_min_isr: kafka.partitions_under_min_isr,
            kafka_config_problems: kafka.kafka_config_problems,
            kafka_queue_messages: kafka.kafka_queue_messages,
            kafka_queue_bytes: kafka.kafka_queue_bytes,
            kafka_broker_rtt_avg: kafka.kafka_broker_rtt_avg,
            kafka_broker_rtt_p99: kafka.kafka_broker_rtt_p99,
            kafka_broker_queue_latency_avg: kafka.kafka_broker_queue_latency_avg,
            kafka_broker_queue_latency_p99: kafka.kafka_broker_queue_latency_p99,
            kafka_broker_up: kafka.kafka_broker_up,
            kafka_tx_errors: kafka.kafka_tx_errors,
            kafka_tx_retries: kafka.kafka_tx_retries,
            brokers: kafka.brokers,
            open_connections: http.open_connections,
            http_errors: http.http_errors,
            connections_rejected: http.connections_rejected,
            slot_waits: http.slot_waits,
            tls_handshake_failures: http.tls_handshake_failures,
            auth_reload_failures: http.auth_reload_failures,
            dedup_remembered: dedup.remembered,
            dedup_memory_bytes: dedup.memory_bytes,
            dedup_evicted: dedup.evicted,
            dedup_ledger_writes: dedup.ledger_writes,
            dedup_ledger_write_failures: dedup.ledger_write_failures,
            dedup_ledger_caught_up: dedup.ledger_caught_up,
            dedup_conflicts: dedup.conflicts,
            transactions,
            log_lines_dropped: Mutex::new(log_lines_dropped),
        }
    }

    /// The text exposition format, for `/metrics`.
    pub fn render(&self) -> Vec<u8> {
        if let Ok(counter) = self.log_lines_dropped.lock() {
            let dropped = crate::telemetry::logging::lines_dropped();
            let counted = counter.get();
            if dropped > counted {
                counter.inc_by(dropped - counted);
            }
        }
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

/// `build_info`: always 1, its label the running version.
fn register_build_info(registry: &Registry) {
    let build_info = register(
        registry,
        IntGaugeVec::new(
            opts(
                "build_info",
                "Always 1; labels carry the version of the running bridge.",
            ),
            &["version"],
        )
        .expect("static metric definition"),
    );
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NS)
}

/// One counter for each value of a one-label metric, all created up front
/// so that every series is there from the first scrape (the values: the
/// `ALL` of a `labels!` enum).
fn per_value<'v>(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = &'v str>,
) -> Vec<IntCounter> {
    let vec = register(
        registry,
        IntCounterVec::new(opts(name, help), &[label]).expect("static metric definition"),
    );
    values.map(|v| vec.with_label_values(&[v])).collect()
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    register(
        registry,
        Histogram::with_opts(
            HistogramOpts::new(name, help)
                .namespace(NS)
                .buckets(buckets.to_vec()),
        )
        .expect("static metric definition"),
    )
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(
        registry,
        IntGauge::with_opts(opts(name, help)).expect("static metric definition"),
    )
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::with_opts(opts(name, help)).expect("static metric definition"),
    )
}

fn register<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    // Names are constants of this module; a clash is a programming error
    // that the unit test below catches, so ignoring the result is safe.
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Holds a gauge one higher for as long as it lives.
pub(crate) struct GaugeGuard<'a>(&'a IntGauge);

impl<'a> GaugeGuard<'a> {
    fn new(g: &'a IntGauge) -> Self {
        g.inc();
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests;
