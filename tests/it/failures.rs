//! When Kafka cannot confirm a write, the answer is 503 with Retry-After
//! within the deadline — never 200, never a hang — and the failed counter
//! moves.
//!
//! The unreachable broker is real (a closed loopback port). Faults a real
//! single broker cannot be made to show on demand (NOT_ENOUGH_REPLICAS on
//! produce, a broker that stops answering mid-run, a slow broker) use
//! librdkafka's mock cluster with its error injection.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::common::*;

fn fail_headers() -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("Pb-Webhook-Type".into(), "TAXINVOICE.STATE".into()),
        ("Pb-Webhook-MID".into(), unique("fail-")),
        ("Pb-Webhook-Corpnum".into(), "1234567890".into()),
        ("Pb-Webhook-EventType".into(), "Issue".into()),
    ]
}

const BODY: &[u8] =
    br#"{"corpNum":"1234567890","itemKey":"025111409301000001","eventType":"Issue"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_gives_503_within_the_deadline() {
    let mut cfg = test_config(&format!("127.0.0.1:{}", closed_port()), &unique("it-down-"));
    cfg.server.request_timeout = Duration::from_secs(3);
    cfg.kafka.message_timeout = Duration::from_secs(2);
    cfg.kafka.admin_timeout = Duration::from_secs(2);
    let bridge = start(cfg).await;

    let t0 = Instant::now();
    let a = post(&bridge, &fail_headers(), BODY.to_vec()).await;
    let took = t0.elapsed();
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(
        took < Duration::from_millis(3500),
        "answered after {took:?}"
    );
    assert_eq!(
        a.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"60"[..])
    );
    assert!(!a.body.trim().is_empty(), "a short reason in the body");

    assert_eq!(deliveries(&bridge, "failed").await, 1.0);
    assert_eq!(deliveries(&bridge, "acknowledged").await, 0.0);
    let (status, body) = get(bridge.admin_addr, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, _) = get(bridge.admin_addr, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "liveness never depends on Kafka");
    bridge.shutdown().await;
}

/// A bridge on a mock cluster that holds its topics, answering within
/// `request_timeout`.
async fn mock_bridge(request_timeout: Duration) -> (MockKafka, popbill_bridge::RunningBridge) {
    mock_bridge_with(request_timeout, true).await
}

/// As [`mock_bridge`], with Kafka transactions on or off: the tests of the
/// idempotent producer's own faults run with them off (with them on, the
/// group commit turns those faults into aborted transactions; see
/// the `transactions` tests and kafka::transactions).
async fn mock_bridge_with(
    request_timeout: Duration,
    transactions: bool,
) -> (MockKafka, popbill_bridge::RunningBridge) {
    let kafka = MockKafka::new();
    let mut cfg = kafka.config(&unique("mock-"));
    cfg.kafka.transactions.enabled = transactions;
    cfg.server.request_timeout = request_timeout;
    cfg.kafka.message_timeout = request_timeout - Duration::from_millis(500);
    // No waiting for a slot: the whole budget is Kafka's.
    cfg.limits.inflight_wait = Duration::ZERO;
    let bridge = kafka.start_ready(cfg).await;
    (kafka, bridge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_enough_replicas_is_a_503_never_a_200() {
    let (kafka, bridge) = mock_bridge(Duration::from_secs(3)).await;
    let a = post(&bridge, &fail_headers(), BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "healthy mock first: {}", a.body);

    // Every produce request is refused for longer than the message timeout.
    kafka.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 500],
    );
    let t0 = Instant::now();
    let a = post(&bridge, &fail_headers(), BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(
        t0.elapsed() < Duration::from_millis(3500),
        "{:?}",
        t0.elapsed()
    );
    assert!(a.headers.contains_key("retry-after"));
    assert_eq!(deliveries(&bridge, "failed").await, 1.0);

    kafka.cluster.clear_request_errors(RDKafkaApiKey::Produce);
    let a = post(&bridge, &fail_headers(), BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "recovers: {}", a.body);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_or_too_slow_gives_503_at_the_deadline() {
    let (kafka, bridge) = mock_bridge(Duration::from_secs(2)).await;
    let a = post(&bridge, &fail_headers(), BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    kafka.cluster.broker_down(1).expect("broker down");
    let t0 = Instant::now();
    let a = post(&bridge, &fail_headers(), BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    kafka.cluster.broker_up(1).expect("broker up");

    // A broker slower than the deadline: the write may still land later,
    // but we must not claim it did.
    kafka
        .cluster
        .broker_round_trip_time(1, Duration::from_secs(5))
        .expect("rtt");
    let t0 = Instant::now();
    let a = post(&bridge, &fail_headers(), BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(deliveries(&bridge, "failed").await, 2.0);
    kafka
        .cluster
        .broker_round_trip_time(1, Duration::ZERO)
        .expect("rtt");
    drop(bridge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_requests_that_time_out_give_503_and_one_timeout_is_retried_once() {
    let (kafka, bridge) = mock_bridge(Duration::from_secs(3)).await;

    // Every produce request times out for longer than the deadline: 503.
    kafka.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 500],
    );
    let a = post(
        &bridge,
        &issue_headers(&unique("rto-")),
        ISSUE_BODY.to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    kafka.cluster.clear_request_errors(RDKafkaApiKey::Produce);

    // One timed-out request: the idempotent producer retries it and the
    // write is confirmed once — a 200 that is true.
    kafka.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT],
    );
    let mid = unique("rto1-");
    let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(deliveries(&bridge, "failed").await, 1.0);
    drop(bridge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_fatal_error_fails_readiness_and_every_answer_says_why() {
    let (kafka, bridge) = mock_bridge_with(Duration::from_secs(3), false).await;
    let a = post(&bridge, &fail_headers(), BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "healthy mock first: {}", a.body);

    // The head-of-line produce request fails with a sequence error: the
    // idempotent producer can no longer guarantee once-only writes and
    // raises a fatal error. It will never write again.
    kafka.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    // Whichever write gets the error (this delivery's or the duplicates
    // ledger's), the producer is finished.
    let _ = post(&bridge, &fail_headers(), BODY.to_vec()).await;

    let body = wait_unready_with(&bridge, "fatal", Duration::from_secs(10)).await;
    assert!(body.contains("restart"), "says what happens next: {body}");
    let a = post(&bridge, &fail_headers(), BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(a.body.contains("fatal"), "{}", a.body);
    let text = metrics_text(&bridge).await;
    assert!(
        metric(
            &text,
            "popbill_bridge_publish_failures_total",
            &[("reason", "producer_fatal")]
        ) >= 1.0,
        "{text}"
    );
    drop(bridge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_failure_makes_the_process_exit_non_zero() {
    let kafka = MockKafka::new();
    let prefix = unique("mock-fatal-");
    let mut cfg = kafka.config(&prefix);
    cfg.dead_letter.enabled = false;
    kafka.create_topics(&cfg);

    // The idempotent producer's first request is refused: this principal
    // may not write idempotently. librdkafka makes that fatal.
    kafka.cluster.request_errors(
        RDKafkaApiKey::InitProducerId,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED],
    );
    let mut child = configured_command(&kafka.brokers(), &prefix)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env(
            "POPBILL_BRIDGE_ROUTES__KNOWN",
            format!(r#"["{MOCK_ROUTE}"]"#),
        )
        .env("POPBILL_BRIDGE_DEAD_LETTER__ENABLED", "false")
        .env("POPBILL_BRIDGE_LOG__LEVEL", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn bridge");
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() > until {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    let Some(status) = status else {
        panic!("the bridge kept running with a producer that can never write:\n{out}");
    };
    assert_eq!(status.code(), Some(3), "exit status {status:?}: {out}");
    assert!(
        out.contains("fatal") && out.contains("uthorization"),
        "the log says why: {out}"
    );
}

/// Issue #19 through the HTTP edge: librdkafka's implicit acknowledgement
/// on a partition the producer never wrote to. The first produce request
/// fails NOT_LEADER while the next ones, already in flight, succeed; the
/// first record is then reported delivered with offset -1001 though the
/// log never got it. Its delivery must get 503 (before the fix it got `OK`,
/// its retry was answered as a duplicate, and the event was gone), and its
/// retry must publish it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_without_an_offset_is_answered_503_and_the_retry_publishes_the_event() {
    let kafka = MockKafka::new();
    let prefix = unique("mock-implicit-");
    let mut cfg = kafka.config(&prefix);
    // The idempotent producer's report, as it comes: with transactions on,
    // the whole group of such a record aborts instead.
    cfg.kafka.transactions.enabled = false;
    // One record a request, so that several are in flight at once.
    for (k, v) in [("linger.ms", "0"), ("batch.num.messages", "1")] {
        cfg.kafka.properties.insert(k.into(), v.into());
    }
    let topic = format!("{prefix}.taxinvoice.state.issue");
    let bridge = kafka.start_ready(cfg).await;
    kafka.cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION],
    );
    // Late answers: all five requests are in flight before the first
    // one's NOT_LEADER is back.
    kafka
        .cluster
        .broker_round_trip_time(1, Duration::from_millis(150))
        .expect("rtt");
    // One document (one key, one partition), five events.
    let mids: Vec<String> = (0..5).map(|_| unique("implicit-")).collect();
    let posts: Vec<_> = mids
        .iter()
        .map(|mid| {
            let (addr, headers) = (bridge.webhook_addr, issue_headers(mid));
            tokio::spawn(async move {
                request(
                    addr,
                    hyper::Method::POST,
                    "/popbill/webhook",
                    &headers,
                    ISSUE_BODY.to_vec(),
                )
                .await
            })
        })
        .collect();
    let mut refused = Vec::new();
    for (mid, p) in mids.iter().zip(posts) {
        let a = p.await.expect("post");
        match a.status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(a.body.contains("did not prove the write"), "{}", a.body);
                assert!(a.headers.contains_key("retry-after"));
                refused.push(mid.clone());
            }
            other => panic!("{mid}: {other} {}", a.body),
        }
    }
    assert_eq!(
        refused.len(),
        1,
        "exactly the implicitly acknowledged record gets 503"
    );
    assert_eq!(
        scrape(
            &bridge,
            "popbill_bridge_kafka_unconfirmed_reports_total",
            &[("writer", "delivery")]
        )
        .await,
        1.0
    );
    assert_eq!(
        scrape(
            &bridge,
            "popbill_bridge_publish_failures_total",
            &[("reason", "unconfirmed")]
        )
        .await,
        1.0
    );

    // POPBiLL's retry is published, not taken for a duplicate.
    kafka
        .cluster
        .broker_round_trip_time(1, Duration::ZERO)
        .expect("rtt");
    let a = post(&bridge, &issue_headers(&refused[0]), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(deliveries(&bridge, "duplicate").await, 0.0);
    assert_eq!(deliveries(&bridge, "acknowledged").await, 5.0);
    // Five events, five records: nothing acknowledged is missing.
    let records: i64 = (0..3)
        .map(|p| kafka_high_watermark(&kafka.brokers(), &topic, p))
        .sum();
    assert_eq!(records, 5);
    bridge.shutdown().await;
}

/// The end of one partition's log, as Kafka reports it.
fn kafka_high_watermark(brokers: &str, topic: &str, partition: i32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("client");
    c.fetch_watermarks(topic, partition, Duration::from_secs(5))
        .expect("watermarks")
        .1
}
