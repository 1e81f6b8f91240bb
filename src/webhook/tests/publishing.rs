//! Publishing and answering: OK only once Kafka confirmed, copies, failures and their answers.

use super::*;
use crate::dedup::InFlight;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

#[tokio::test]
async fn a_valid_delivery_is_answered_ok_once_kafka_confirmed_it() {
    let f = fixture(|_| {}, &[]);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(header(&r, CONTENT_TYPE), Some(crate::http::answer::PLAIN));
    assert_eq!(deliveries(&f.app, "acknowledged"), 1.0);
    assert_eq!(records_in(&f.cluster, ISSUE_TOPIC).await, 1);
}

#[tokio::test]
async fn a_published_delivery_splits_its_time_into_handover_report_and_answer() {
    // The per-stage latency issue #25 asks the bench to show: the bridge's
    // own share before the record reaches the producer, Kafka's report,
    // and what is left for the answer.
    let f = fixture(|_| {}, &[]);
    // A first delivery's handover would include the topic check.
    known_then_slow(&f, Duration::from_millis(100)).await;
    for _ in 0..2 {
        let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
        assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    }
    let seconds = |name: &str| {
        metric(
            &f.app,
            &format!("popbill_bridge_{name}_duration_seconds_sum"),
        )
    };
    let count = |name: &str| {
        metric(
            &f.app,
            &format!("popbill_bridge_{name}_duration_seconds_count"),
        )
    };
    // The copy was recognised before any handover: one of each.
    assert_eq!(
        (count("handover"), count("publish"), count("request")),
        (1.0, 1.0, 2.0)
    );
    let (handover, report, request) = (seconds("handover"), seconds("publish"), seconds("request"));
    assert!(handover > 0.0 && handover < 0.1, "handover {handover}s");
    assert!(
        report >= 0.1,
        "the report waited out the round-trip: {report}s"
    );
    assert!(request >= handover + report, "request {request}s");
}

#[tokio::test]
async fn librdkafka_statistics_give_each_brokers_queue_wait_and_round_trip() {
    // A record's wait for its report is the producer's queue, then the
    // broker: both per broker, in seconds, from the statistics the
    // producer reports.
    let f = fixture(
        |c| c.kafka.statistics_interval = Duration::from_millis(100),
        &[],
    );
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    f.cluster
        .broker_round_trip_time(1, Duration::from_millis(100))
        .expect("rtt");
    let gauge = |name: &str| -> Option<f64> {
        String::from_utf8(f.app.metrics.render())
            .expect("utf8")
            .lines()
            .find(|l| l.starts_with(&format!("popbill_bridge_kafka_broker_{name}{{broker=")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    // Deliveries keep the windows filled while the round-trip shows.
    let until = Instant::now() + Duration::from_secs(10);
    let mut n = 1;
    loop {
        let rtt = gauge("rtt_avg_seconds").unwrap_or(0.0);
        if rtt >= 0.05 {
            assert!(rtt < 1.0, "round-trip {rtt} s: not in seconds?");
            for name in ["queue_latency_avg_seconds", "queue_latency_p99_seconds"] {
                let q = gauge(name).unwrap_or(-1.0);
                assert!((0.0..1.0).contains(&q), "{name} = {q}");
            }
            assert!(gauge("rtt_p99_seconds").is_some_and(|p| p > 0.0 && p < 1.0));
            break;
        }
        assert!(
            Instant::now() < until,
            "no 100 ms round-trip in the statistics within 10 s: rtt_avg {rtt}"
        );
        n += 1;
        let r = exchange(
            &f.app,
            peer(),
            post(&issue_headers(&format!("mid-{n}")), ISSUE_BODY),
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
}

#[tokio::test]
async fn with_ok_body_json_a_published_delivery_and_its_copy_are_answered_result_ok() {
    let f = fixture(|c| c.server.ok_body = OkBody::Json, &[]);
    for outcome in ["acknowledged", "duplicate"] {
        let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, r#"{"result":"OK"}"#),
            "{outcome}: {r:?}"
        );
        assert_eq!(header(&r, CONTENT_TYPE), Some("application/json"));
        assert_eq!(deliveries(&f.app, outcome), 1.0);
    }
}

#[tokio::test]
async fn a_copy_of_a_published_event_is_answered_ok_without_a_second_record() {
    let f = fixture(|_| {}, &[]);
    for _ in 0..2 {
        let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
        assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    }
    assert_eq!(deliveries(&f.app, "acknowledged"), 1.0);
    assert_eq!(deliveries(&f.app, "duplicate"), 1.0);
    assert_eq!(records_in(&f.cluster, ISSUE_TOPIC).await, 1);
}

#[tokio::test]
async fn a_copy_arriving_while_the_first_is_in_flight_waits_and_shares_its_ok() {
    let f = fixture(|_| {}, &[]);
    f.cluster
        .broker_round_trip_time(1, Duration::from_millis(100))
        .expect("rtt");
    let (a, b) = tokio::join!(
        exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)),
        exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)),
    );
    assert_eq!((a.status, a.body.as_str()), (200, "OK"), "{a:?}");
    assert_eq!((b.status, b.body.as_str()), (200, "OK"), "{b:?}");
    assert_eq!(deliveries(&f.app, "acknowledged"), 1.0);
    assert_eq!(deliveries(&f.app, "duplicate"), 1.0);
    f.cluster
        .broker_round_trip_time(1, Duration::ZERO)
        .expect("rtt");
    assert_eq!(records_in(&f.cluster, ISSUE_TOPIC).await, 1);
}

#[tokio::test]
async fn a_delivery_kafka_cannot_take_is_503_with_retry_after() {
    let f = fixture(|_| {}, &[ISSUE_TOPIC]);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(header(&r, RETRY_AFTER), Some("7"));
    assert!(r.body.contains(ISSUE_TOPIC), "{r:?}");
    assert_eq!(deliveries(&f.app, "failed"), 1.0);
    assert_eq!(deliveries(&f.app, "acknowledged"), 0.0);
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_publish_failures_total{reason="topic_missing"}"#
        ),
        1.0
    );
    // A failed attempt is not remembered: the retry publishes.
    f.cluster.create_topic(ISSUE_TOPIC, 1, 1).expect("topic");
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(deliveries(&f.app, "duplicate"), 0.0);
}

#[tokio::test]
async fn a_write_kafka_does_not_confirm_by_the_deadline_is_503_timeout() {
    let f = fixture(
        |c| {
            c.server.request_timeout = Duration::from_millis(600);
            c.kafka.message_timeout = Duration::from_millis(300);
            c.limits.inflight_wait = Duration::ZERO;
            c.kafka.admin_timeout = Duration::from_secs(2);
        },
        &[],
    );
    known_then_slow(&f, Duration::from_secs(1)).await;
    let started = tokio::time::Instant::now();
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-2"), ISSUE_BODY)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(header(&r, RETRY_AFTER), Some("7"));
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_publish_failures_total{reason="timeout"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_deadline_that_comes_during_the_commit_is_503_commit_pending_not_timeout() {
    // Before: 503 `timeout`, the reason that means "not written", for a
    // delivery whose commit was under way and could still land.
    let f = transactional_fixture(|c| {
        c.server.request_timeout = Duration::from_millis(800);
        c.kafka.message_timeout = Duration::from_millis(500);
        c.limits.inflight_wait = Duration::ZERO;
        c.kafka.transactions.timeout = Duration::from_secs(5);
    })
    .await;
    // The coordinator is busy for a while: each EndTxn is retried.
    f.cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 30],
    );
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-c"), ISSUE_BODY)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        r.body
            .starts_with("Kafka transaction still committing at the deadline"),
        "{r:?}"
    );
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_publish_failures_total{reason="commit_pending"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_publish_failures_total{reason="timeout"}"#
        ),
        0.0
    );
}

#[tokio::test]
async fn finish_answers_each_ending_and_counts_it_once() {
    let f = fixture(|_| {}, &[]);
    let app = &f.app;
    let mut headers = HeaderMap::new();
    for (k, v) in issue_headers("mid-1") {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(&v).expect("value"),
        );
    }
    let d = Delivery::parse(&headers, ISSUE_BODY).expect("valid");
    let route = app.router.route("TAXINVOICE.STATE", Some("Issue"));
    let receipt = Receipt::from_report(0, 9).expect("a real offset");
    let latency = Duration::from_millis(3);
    let body = |r: Response<Body>| async move {
        let b = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(b.to_vec()).expect("utf8")
    };

    let published = End::Published {
        receipt,
        dead_letter: None,
    };
    let r = finish(app, published, route, &d, "mid-1", latency);
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await, "OK");
    for waited in [false, true] {
        let r = finish(app, End::Duplicate { waited }, route, &d, "mid-1", latency);
        assert_eq!(r.status(), 200);
        assert_eq!(body(r).await, "OK");
    }
    let failed = End::Failed(Arc::new(BridgeError::QueueFull));
    let r = finish(app, failed, route, &d, "mid-1", latency);
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()[RETRY_AFTER], "7");
    assert_eq!(body(r).await, "producer queue is full\n");

    assert_eq!(deliveries(app, "acknowledged"), 1.0);
    assert_eq!(deliveries(app, "duplicate"), 2.0);
    assert_eq!(deliveries(app, "failed"), 1.0);
    assert_eq!(
        metric(
            app,
            r#"popbill_bridge_publish_failures_total{reason="queue_full"}"#
        ),
        1.0
    );

    // A dead letter is counted as written only once Kafka confirmed it.
    let dl = app.router.dead_letter().expect("dead letters on");
    let raw = Delivery::raw(&headers, b"x");
    let series = r#"popbill_bridge_dead_letters_total{reason="not_json"}"#;
    let failed = End::Failed(Arc::new(BridgeError::PublishTimeout));
    assert_eq!(
        finish(app, failed, dl, &raw, "mid-1", latency).status(),
        503
    );
    assert_eq!(metric(app, series), 0.0);
    let published = End::Published {
        receipt,
        dead_letter: Some(RejectReason::NotJson),
    };
    assert_eq!(
        finish(app, published, dl, &raw, "mid-1", latency).status(),
        200
    );
    assert_eq!(metric(app, series), 1.0);
}

// --- dead letters: only from senders we know ----------------------------

#[tokio::test]
async fn a_malformed_body_from_a_verified_sender_is_dead_lettered_with_its_reason_and_counted_as_such()
 {
    let f = fixture(|c| c.auth.api_keys = vec![API_KEY.into()], &[]);
    let mut headers = issue_headers("mid-1");
    headers.push(("X-Api-Key", API_KEY.into()));
    let r = exchange(&f.app, peer(), post(&headers, b"not json")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(rejected(&f.app, "not_json"), 1.0);
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_dead_letters_total{reason="not_json"}"#
        ),
        1.0
    );
    // Counted under a series of its own, not as an event type no route
    // knows ("other").
    for (event_type, n) in [("dead_letter", 1.0), ("other", 0.0)] {
        let series = format!(
            r#"popbill_bridge_deliveries_total{{event_type="{event_type}",outcome="acknowledged"}}"#
        );
        assert_eq!(metric(&f.app, &series), n, "{series}");
    }
    assert_eq!(records_in(&f.cluster, ISSUE_TOPIC).await, 0);
    let record = first_record_headers(&f.cluster, DEAD_LETTER_TOPIC).await;
    assert!(
        record.contains(&(DEAD_LETTER_REASON.to_string(), "not_json".to_string())),
        "{record:?}"
    );
    assert!(
        !record
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-api-key")),
        "{record:?}"
    );
}

#[tokio::test]
async fn a_malformed_body_from_an_allow_listed_source_is_dead_lettered() {
    let f = fixture(|c| c.access.allow = vec!["127.0.0.1".into()], &[]);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), b"[1, 2]")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_dead_letters_total{reason="not_object"}"#
        ),
        1.0
    );
    assert_eq!(records_in(&f.cluster, DEAD_LETTER_TOPIC).await, 1);
}

#[tokio::test]
async fn a_malformed_body_from_an_unverified_sender_is_refused_400_not_dead_lettered() {
    // Neither credentials nor an allow-list: anyone may post, so nobody
    // is known.
    let f = fixture(|_| {}, &[]);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), b"not json")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(rejected(&f.app, "not_json"), 1.0);
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_dead_letters_total{reason="not_json"}"#
        ),
        0.0
    );
    assert_eq!(records_in(&f.cluster, DEAD_LETTER_TOPIC).await, 0);
}

#[tokio::test]
async fn an_empty_body_from_a_verified_sender_is_refused_not_dead_lettered() {
    let f = fixture(|c| c.auth.api_keys = vec![API_KEY.into()], &[]);
    let mut headers = issue_headers("mid-1");
    headers.push(("X-Api-Key", API_KEY.into()));
    let r = exchange(&f.app, peer(), post(&headers, b"")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(rejected(&f.app, "empty_body"), 1.0);
    assert_eq!(records_in(&f.cluster, DEAD_LETTER_TOPIC).await, 0);
}

#[tokio::test]
async fn with_dead_letters_off_a_verified_senders_malformed_body_is_refused() {
    let f = fixture(
        |c| {
            c.auth.api_keys = vec![API_KEY.into()];
            c.dead_letter.enabled = false;
        },
        &[],
    );
    let mut headers = issue_headers("mid-1");
    headers.push(("X-Api-Key", API_KEY.into()));
    let r = exchange(&f.app, peer(), post(&headers, b"not json")).await;
    assert_eq!(r.status, 400, "{r:?}");
}

// --- wait_for ------------------------------------------------------------

#[tokio::test]
async fn wait_for_returns_the_first_copys_verdict() {
    let (lead, copies) = lead_and_copies(1);
    let deadline = Instant::now() + Duration::from_secs(2);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        lead.settle(Ok(Receipt::from_report(2, 5).expect("a real offset")));
    });
    let r = wait_for(copies, std::pin::pin!(tokio::time::sleep_until(deadline)))
        .await
        .expect("confirmed");
    assert_eq!((r.partition(), r.offset()), (2, 5));

    let (lead, copies) = lead_and_copies(2);
    lead.settle(Err(Arc::new(BridgeError::QueueFull)));
    let e = wait_for(copies, std::pin::pin!(tokio::time::sleep_until(deadline)))
        .await
        .expect_err("failed");
    assert!(matches!(*e, BridgeError::QueueFull), "{e:?}");
}

/// A first copy in flight and a second that follows it.
fn lead_and_copies(identity: u128) -> (Lead, Arc<InFlight>) {
    let metrics = Arc::new(Metrics::new(&[]));
    let dedup = Arc::new(Dedup::new(&crate::dedup::DedupConfig::default(), metrics));
    let claim = crate::dedup::Claim { identity, body: 1 };
    let Admission::Lead(lead) = dedup.admit(claim, "m") else {
        panic!("the first copy leads")
    };
    let Admission::InFlight(copies) = dedup.admit(claim, "m") else {
        panic!("the second copy follows")
    };
    (lead, copies)
}

#[tokio::test]
async fn wait_for_gives_up_at_the_deadline_as_publish_timeout() {
    let (_lead, copies) = lead_and_copies(3);
    let started = Instant::now();
    let e = wait_for(
        copies,
        std::pin::pin!(tokio::time::sleep_until(
            started + Duration::from_millis(100)
        )),
    )
    .await
    .expect_err("no verdict");
    assert!(matches!(*e, BridgeError::PublishTimeout), "{e:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(1),
        "{took:?}"
    );
}

#[tokio::test]
async fn wait_for_a_lead_gone_without_a_verdict_is_abandoned_not_a_hang() {
    let (lead, copies) = lead_and_copies(4);
    drop(lead);
    let e = wait_for(
        copies,
        std::pin::pin!(tokio::time::sleep(Duration::from_secs(5))),
    )
    .await
    .expect_err("no verdict");
    assert!(matches!(*e, BridgeError::Abandoned), "{e:?}");
}

/// The issue topic is known first; then Kafka turns slow: every answer
/// of the mock broker waits `round_trip`.
async fn known_then_slow(f: &Fixture, round_trip: Duration) {
    let route = f.app.router.route("TAXINVOICE.STATE", Some("Issue"));
    f.app
        .topics
        .ensure(route, Instant::now() + Duration::from_secs(2))
        .await
        .expect("the topic exists");
    f.cluster
        .broker_round_trip_time(1, round_trip)
        .expect("rtt");
}
