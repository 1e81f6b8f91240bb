//! Every Prometheus metric the bridge exports, in one registry per bridge
//! (not the global one, so two bridges in one test process do not mix).
//!
//! Label values are bounded by construction: outcomes and reasons are enums,
//! `event_type` is a configured route label or `other`, `broker` is one of
//! the cluster's brokers. Counters for every combination are created at
//! start-up, so dashboards see zeros instead of missing series, and the hot
//! path increments pre-resolved handles instead of looking labels up.

use std::sync::Mutex;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder, core::Collector,
};

use crate::labels::{
    FailReason, HttpErrorKind, Outcome, RecordWriter, RejectReason, TransactionOutcome,
};
use crate::route::{OTHER_LABEL, Route};

const NS: &str = "popbill_bridge";

/// Latency buckets from half a millisecond (a healthy local broker) to the
/// longest deadline anyone should configure.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The four outcome counters of one route label.
#[derive(Clone)]
pub struct OutcomeCounters([IntCounter; 4]);

impl OutcomeCounters {
    pub(super) fn get(&self, o: Outcome) -> &IntCounter {
        &self.0[o as usize]
    }
}

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
    pub(super) inflight: IntGauge,
    pub(super) body_buffer_bytes: IntGauge,
    pub(super) kafka_up: IntGauge,
    pub(super) topics_missing: IntGauge,
    pub(super) kafka_config_problems: IntGauge,
    pub(super) kafka_queue_messages: IntGauge,
    pub(super) kafka_queue_bytes: IntGauge,
    pub(super) kafka_broker_rtt_avg: prometheus::GaugeVec,
    kafka_broker_rtt_p99: prometheus::GaugeVec,
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
}

/// What one producer's last statistics report said (see
/// [`Metrics::record_kafka_stats`]).
#[derive(Default)]
struct ClientTotals {
    /// Messages and bytes in its queue.
    queue: (u64, u64),
    /// Broker name → (txerrs, txretries).
    brokers: std::collections::HashMap<String, (u64, u64)>,
}

/// The group commit's metrics (`kafka.transactions`).
pub(super) struct TransactionMetrics {
    /// By [`TransactionOutcome`], in its order.
    pub(super) ended: Vec<IntCounter>,
    pub(super) deliveries: Histogram,
    pub(super) duration: Histogram,
}

/// Deliveries in one transaction: one at low traffic, up to the in-flight
/// limit under load.
const GROUP_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

impl TransactionMetrics {
    fn new(registry: &Registry) -> TransactionMetrics {
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(name, help)
                        .namespace(NS)
                        .buckets(buckets.to_vec()),
                )
                .expect("static metric definition"),
            )
        };
        TransactionMetrics {
            ended: per_value(
                registry,
                "transactions_total",
                "Transactions of the group commit by how they ended: committed, aborted (nothing of it visible), unsettled (the outcome unknown by the deadline).",
                "outcome",
                TransactionOutcome::ALL.iter().map(|o| o.as_str()),
            ),
            deliveries: histogram(
                "transaction_deliveries",
                "Deliveries per transaction of the group commit.",
                GROUP_SIZE_BUCKETS,
            ),
            duration: histogram(
                "transaction_duration_seconds",
                "Time from sealing a group to its commit or abort (reports awaited, ledger lines written, commit).",
                LATENCY_BUCKETS,
            ),
        }
    }
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

fn register<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    // Names are constants of this module; a clash is a programming error
    // that the unit test below catches, so ignoring the result is safe.
    let _ = registry.register(Box::new(c.clone()));
    c
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
        let deliveries = register(
            &registry,
            IntCounterVec::new(
                opts(
                    "deliveries_total",
                    "Webhook deliveries by how they ended (acknowledged, failed, duplicate, rejected) and event type.",
                ),
                &["outcome", "event_type"],
            )
            .expect("static metric definition"),
        );
        let counters_for = |label: &str| {
            OutcomeCounters(std::array::from_fn(|i| {
                deliveries.with_label_values(&[Outcome::ALL[i].as_str(), label])
            }))
        };
        let by_route = routes.iter().map(|r| counters_for(&r.label)).collect();
        let other = counters_for(OTHER_LABEL);

        let rejections = per_value(
            &registry,
            "rejections_total",
            "Requests refused, by reason: a 4xx, or 503 when shedding load (overloaded).",
            "reason",
            RejectReason::ALL.iter().map(|r| r.as_str()),
        );
        let dead_letters = per_value(
            &registry,
            "dead_letters_total",
            "Malformed deliveries from verified senders written to the dead-letter topic, by reason.",
            "reason",
            RejectReason::ALL.iter().map(|r| r.as_str()),
        );
        let publish_failures = per_value(
            &registry,
            "publish_failures_total",
            "Deliveries answered 503 because Kafka did not confirm them, by reason.",
            "reason",
            FailReason::ALL.iter().map(|r| r.as_str()),
        );
        let unconfirmed_reports = per_value(
            &registry,
            "kafka_unconfirmed_reports_total",
            "Delivery reports that said delivered without an offset (librdkafka's implicit acknowledgement), by writer: never trusted; a delivery is answered 503, a ledger batch counts as not written.",
            "writer",
            RecordWriter::ALL.iter().map(|w| w.as_str()),
        );

        let histogram = |name: &str, help: &str| {
            register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(name, help)
                        .namespace(NS)
                        .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("static metric definition"),
            )
        };
        let publish_duration = histogram(
            "publish_duration_seconds",
            "Time from handing a record to the producer until Kafka's delivery report.",
        );
        let request_duration = histogram(
            "request_duration_seconds",
            "Time from receiving a webhook request until its answer, all outcomes.",
        );
        let gauge = |name: &str, help: &str| {
            register(
                &registry,
                IntGauge::with_opts(opts(name, help)).expect("static metric definition"),
            )
        };
        let inflight = gauge(
            "inflight_requests",
            "Webhook requests being handled right now.",
        );
        let body_buffer_bytes = gauge(
            "body_buffer_bytes",
            "Bytes of request bodies held in memory (being read, or waiting for Kafka); at most limits.max_body_buffer_bytes.",
        );
        let kafka_up = gauge(
            "kafka_up",
            "1 when the last metadata request to Kafka succeeded, else 0.",
        );
        let topics_missing = gauge(
            "topics_missing",
            "Routed topics known not to exist (or not yet confirmed) in Kafka.",
        );
        let kafka_config_problems = gauge(
            "kafka_config_problems",
            "Topic settings that break a promise of the bridge (record size, min.insync.replicas, ledger retention); /readyz lists them.",
        );
        let kafka_queue_messages = gauge(
            "kafka_producer_queue_messages",
            "Records in the producer queue waiting for Kafka (librdkafka msg_cnt).",
        );
        let kafka_queue_bytes = gauge(
            "kafka_producer_queue_bytes",
            "Bytes in the producer queue waiting for Kafka (librdkafka msg_size).",
        );
        let broker_gauge = |name: &str, help: &str| {
            register(
                &registry,
                prometheus::GaugeVec::new(opts(name, help), &["broker"])
                    .expect("static metric definition"),
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
        let kafka_broker_up = register(
            &registry,
            IntGaugeVec::new(
                opts(
                    "kafka_broker_up",
                    "1 when the producer's connection to the broker is UP.",
                ),
                &["broker"],
            )
            .expect("static metric definition"),
        );
        let dedup_remembered = gauge(
            "dedup_remembered_events",
            "Event identities remembered for duplicate detection (this replica).",
        );
        let dedup_memory_bytes = gauge(
            "dedup_memory_bytes",
            "Heap bytes of the remembered identities; divide by dedup_remembered_events for bytes per event.",
        );
        let dedup_ledger_caught_up = gauge(
            "dedup_ledger_caught_up",
            "1 once the duplicates ledger has been read up to its end at start-up.",
        );
        let counter = |name: &str, help: &str| {
            register(
                &registry,
                IntCounter::with_opts(opts(name, help)).expect("static metric definition"),
            )
        };
        let kafka_tx_errors = counter(
            "kafka_producer_request_errors_total",
            "Produce request errors to brokers (librdkafka txerrs, summed over brokers).",
        );
        let kafka_tx_retries = counter(
            "kafka_producer_request_retries_total",
            "Produce request retries to brokers (librdkafka txretries, summed over brokers).",
        );
        let dedup_evicted = counter(
            "dedup_evicted_total",
            "Identities forgotten before the window ended because dedup.max_entries was reached.",
        );
        let dedup_ledger_writes = counter(
            "dedup_ledger_writes_total",
            "Ledger records written (one per published event).",
        );
        let dedup_conflicts = counter(
            "dedup_conflicts_total",
            "Deliveries whose identity (MID or content key) was already remembered with a different body: published, not treated as duplicates.",
        );
        let dedup_ledger_write_failures = counter(
            "dedup_ledger_write_failures_total",
            "Ledger records Kafka did not confirm; a later copy of those events would be published again.",
        );
        let http_errors = per_value(
            &registry,
            "http_errors_total",
            "Connections refused or dropped by the HTTP layer before a request reached the handler (headers too large, malformed HTTP, header timeout, client gone), by kind.",
            "kind",
            HttpErrorKind::ALL.iter().map(|k| k.as_str()),
        );
        let open_connections = gauge("open_connections", "Open connections on the webhook port.");
        let connections_rejected = counter(
            "connections_rejected_total",
            "Connections closed at once because limits.max_connections were open.",
        );
        let slot_waits = counter(
            "inflight_slot_waits_total",
            "Deliveries that found all limits.max_inflight slots taken and waited for one (up to limits.inflight_wait; those still without one are rejected as overloaded).",
        );
        let tls_handshake_failures = counter(
            "tls_handshake_failures_total",
            "TLS handshakes on the webhook port that failed or timed out.",
        );
        let auth_reload_failures = counter(
            "auth_reload_failures_total",
            "Changed credential files that held no usable credential; the previous credentials were kept.",
        );
        let build_info = register(
            &registry,
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

        let transactions = TransactionMetrics::new(&registry);
        Metrics {
            registry,
            by_route,
            other,
            rejections,
            dead_letters,
            publish_failures,
            unconfirmed_reports,
            publish_duration,
            request_duration,
            inflight,
            body_buffer_bytes,
            kafka_up,
            topics_missing,
            kafka_config_problems,
            kafka_queue_messages,
            kafka_queue_bytes,
            kafka_broker_rtt_avg,
            kafka_broker_rtt_p99,
            kafka_broker_up,
            kafka_tx_errors,
            kafka_tx_retries,
            brokers: Mutex::new(std::collections::HashMap::new()),
            open_connections,
            http_errors,
            connections_rejected,
            slot_waits,
            tls_handshake_failures,
            auth_reload_failures,
            dedup_remembered,
            dedup_memory_bytes,
            dedup_evicted,
            dedup_ledger_writes,
            dedup_ledger_write_failures,
            dedup_ledger_caught_up,
            dedup_conflicts,
            transactions,
        }
    }

    /// Counters of a routed delivery.
    pub(super) fn route(&self, route: &Route) -> &OutcomeCounters {
        self.by_route.get(route.id).unwrap_or(&self.other)
    }

    /// Counters of a delivery rejected before it could be routed.
    pub(super) fn unrouted(&self) -> &OutcomeCounters {
        &self.other
    }

    pub(super) fn rejection(&self, reason: RejectReason) -> &IntCounter {
        &self.rejections[reason as usize]
    }

    pub(super) fn http_error(&self, kind: HttpErrorKind) -> &IntCounter {
        &self.http_errors[kind as usize]
    }

    pub(super) fn dead_letter(&self, reason: RejectReason) -> &IntCounter {
        &self.dead_letters[reason as usize]
    }

    pub(super) fn unconfirmed_report(&self, writer: RecordWriter) -> &IntCounter {
        &self.unconfirmed_reports[writer as usize]
    }

    pub(super) fn publish_failure(&self, reason: FailReason) -> &IntCounter {
        &self.publish_failures[reason as usize]
    }

    /// Counts a webhook request as in flight while the guard lives.
    pub fn request_in_flight(&self) -> GaugeGuard<'_> {
        GaugeGuard::new(&self.inflight)
    }

    /// Counts an open webhook connection while the guard lives.
    pub fn connection_open(&self) -> GaugeGuard<'_> {
        GaugeGuard::new(&self.open_connections)
    }

    pub fn observe_request(&self, took: std::time::Duration) {
        self.request_duration.observe(took.as_secs_f64());
    }

    pub fn observe_publish(&self, took: std::time::Duration) {
        self.publish_duration.observe(took.as_secs_f64());
    }

    /// Topics a delivery can go to that are not known to exist, as of the
    /// last readiness round.
    pub fn set_topics_missing(&self, n: usize) {
        self.topics_missing.set(clamp(n as u64));
    }

    /// Topic settings that break a promise, as of the last check.
    pub fn set_body_buffer_bytes(&self, n: usize) {
        self.body_buffer_bytes.set(clamp(n as u64));
    }

    pub fn set_kafka_config_problems(&self, n: usize) {
        self.kafka_config_problems.set(clamp(n as u64));
    }

    /// The size of the duplicate memory, and identities evicted early.
    pub fn set_dedup_memory(&self, remembered: usize, bytes: usize, evicted: usize) {
        self.dedup_remembered.set(clamp(remembered as u64));
        self.dedup_memory_bytes.set(clamp(bytes as u64));
        if evicted > 0 {
            self.dedup_evicted.inc_by(evicted as u64);
        }
    }

    /// The counter credential reloads that failed are counted on (kept by
    /// the credential store itself, which reloads on its own schedule).
    pub fn auth_reload_failures(&self) -> IntCounter {
        self.auth_reload_failures.clone()
    }

    /// Applies one librdkafka statistics report.
    /// One producer's statistics report. Several producers report (the
    /// transactional writers, and the producer the topic checks use): the
    /// queue gauges are their sum, the per-broker figures the latest any
    /// of them saw, the error and retry counters the sum of what is new
    /// in each.
    pub fn record_kafka_stats(&self, stats: &rdkafka::Statistics) {
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
            if let Some(rtt) = &b.rtt {
                self.kafka_broker_rtt_avg
                    .with_label_values(&[name])
                    .set(rtt.avg as f64 / 1e6);
                self.kafka_broker_rtt_p99
                    .with_label_values(&[name])
                    .set(rtt.p99 as f64 / 1e6);
            }
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
            let _ = self.kafka_broker_rtt_avg.remove_label_values(&[gone]);
            let _ = self.kafka_broker_rtt_p99.remove_label_values(&[gone]);
        }
        let (messages, bytes) = clients
            .values()
            .fold((0u64, 0u64), |(m, b), c| (m + c.queue.0, b + c.queue.1));
        self.kafka_queue_messages.set(clamp(messages));
        self.kafka_queue_bytes.set(clamp(bytes));
    }

    /// The text exposition format, for `/metrics`.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Holds a gauge one higher for as long as it lives.
pub struct GaugeGuard<'a>(&'a IntGauge);

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
