//! What happened to webhook deliveries: how each ended (by outcome and
//! event type), why a request was refused, dead-lettered or answered 503,
//! delivery reports that proved nothing, and how long publishing and the
//! whole request took.

use prometheus::{Histogram, IntCounter, IntCounterVec, Registry};

use crate::labels::{FailReason, Outcome, RecordWriter, RejectReason};
use crate::route::{OTHER_LABEL, Route};
use crate::telemetry::metrics::{LATENCY_BUCKETS, Metrics, histogram, opts, per_value, register};

/// The four outcome counters of one route label.
#[derive(Clone)]
pub(in crate::telemetry) struct OutcomeCounters([IntCounter; 4]);

impl OutcomeCounters {
    pub(in crate::telemetry) fn get(&self, o: Outcome) -> &IntCounter {
        &self.0[o as usize]
    }
}

pub(super) struct DeliveryMetrics {
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
}

impl DeliveryMetrics {
    pub(super) fn new(registry: &Registry, routes: &[Route]) -> DeliveryMetrics {
        let deliveries = register(
            registry,
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
            registry,
            "rejections_total",
            "Requests refused, by reason: a 4xx, or 503 when shedding load (overloaded).",
            "reason",
            RejectReason::ALL.iter().map(|r| r.as_str()),
        );
        let dead_letters = per_value(
            registry,
            "dead_letters_total",
            "Malformed deliveries from verified senders written to the dead-letter topic, by reason.",
            "reason",
            RejectReason::ALL.iter().map(|r| r.as_str()),
        );
        let publish_failures = per_value(
            registry,
            "publish_failures_total",
            "Deliveries answered 503 because Kafka did not confirm them, by reason.",
            "reason",
            FailReason::ALL.iter().map(|r| r.as_str()),
        );
        let unconfirmed_reports = per_value(
            registry,
            "kafka_unconfirmed_reports_total",
            "Delivery reports that said delivered without an offset (librdkafka's implicit acknowledgement), by writer: never trusted; a delivery is answered 503, a ledger batch counts as not written.",
            "writer",
            RecordWriter::ALL.iter().map(|w| w.as_str()),
        );

        let publish_duration = histogram(
            registry,
            "publish_duration_seconds",
            "Time from handing a record to the producer until Kafka's delivery report.",
            LATENCY_BUCKETS,
        );
        let request_duration = histogram(
            registry,
            "request_duration_seconds",
            "Time from receiving a webhook request until its answer, all outcomes.",
            LATENCY_BUCKETS,
        );
        let handover_duration = histogram(
            registry,
            "handover_duration_seconds",
            "Time from receiving a webhook request until its record is handed to the producer \
             (body, slot, parsing, duplicates, topic check): the bridge's own share before \
             Kafka's report.",
            LATENCY_BUCKETS,
        );
        DeliveryMetrics {
            by_route,
            other,
            rejections,
            dead_letters,
            publish_failures,
            unconfirmed_reports,
            publish_duration,
            request_duration,
            handover_duration,
        }
    }
}

impl Metrics {
    /// Counters of a routed delivery.
    pub(in crate::telemetry) fn route(&self, route: &Route) -> &OutcomeCounters {
        self.by_route.get(route.id).unwrap_or(&self.other)
    }

    /// Counters of a delivery rejected before it could be routed.
    pub(in crate::telemetry) fn unrouted(&self) -> &OutcomeCounters {
        &self.other
    }

    pub(in crate::telemetry) fn rejection(&self, reason: RejectReason) -> &IntCounter {
        &self.rejections[reason as usize]
    }

    pub(in crate::telemetry) fn dead_letter(&self, reason: RejectReason) -> &IntCounter {
        &self.dead_letters[reason as usize]
    }

    pub(in crate::telemetry) fn unconfirmed_report(&self, writer: RecordWriter) -> &IntCounter {
        &self.unconfirmed_reports[writer as usize]
    }

    pub(in crate::telemetry) fn publish_failure(&self, reason: FailReason) -> &IntCounter {
        &self.publish_failures[reason as usize]
    }

    pub(crate) fn observe_request(&self, took: std::time::Duration) {
        self.request_duration.observe(took.as_secs_f64());
    }

    pub(crate) fn observe_publish(&self, took: std::time::Duration) {
        self.publish_duration.observe(took.as_secs_f64());
    }

    pub(crate) fn observe_handover(&self, took: std::time::Duration) {
        self.handover_duration.observe(took.as_secs_f64());
    }
}
