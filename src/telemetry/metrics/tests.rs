use super::*;
use crate::labels::Outcome;
use crate::route::Router;
use crate::route::RoutesConfig;

#[test]
fn every_metric_is_registered_and_pre_initialised() {
    let router = Router::new(
        &RoutesConfig::default(),
        &crate::route::DeadLetterConfig::default(),
    )
    .expect("routes");
    let m = Metrics::new(router.routes());
    m.route(router.fallback()).get(Outcome::Acknowledged).inc();
    m.publish_duration.observe(0.001);
    m.request_duration.observe(0.001);
    let text = String::from_utf8(m.render()).expect("utf8");
    for name in [
        "popbill_bridge_deliveries_total",
        "popbill_bridge_rejections_total",
        "popbill_bridge_publish_failures_total",
        "popbill_bridge_publish_duration_seconds_bucket",
        "popbill_bridge_request_duration_seconds_bucket",
        "popbill_bridge_inflight_requests",
        "popbill_bridge_inflight_slot_waits_total",
        "popbill_bridge_build_info",
        "popbill_bridge_kafka_up",
        "popbill_bridge_kafka_producer_queue_messages",
        "# TYPE popbill_bridge_kafka_producer_request_errors_total counter",
        "# TYPE popbill_bridge_kafka_producer_request_retries_total counter",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(text.contains(
        r#"popbill_bridge_deliveries_total{event_type="other",outcome="acknowledged"} 1"#
    ));
    assert!(text.contains(
        r#"popbill_bridge_deliveries_total{event_type="TAXINVOICE.STATE:Issue",outcome="duplicate"} 0"#
    ));
    assert!(text.contains(r#"popbill_bridge_rejections_total{reason="too_deep"} 0"#));
}

#[test]
fn inflight_guard_balances() {
    let g = IntGauge::new("g", "g").expect("gauge");
    {
        let _a = GaugeGuard::new(&g);
        let _b = GaugeGuard::new(&g);
        assert_eq!(g.get(), 2);
    }
    assert_eq!(g.get(), 0);
}
