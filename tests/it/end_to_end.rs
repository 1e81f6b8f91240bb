//! End to end against a real Kafka broker (`scripts/kafka.sh start`, or
//! `KAFKA_BOOTSTRAP_SERVERS`): every sample delivery goes through the
//! running bridge and is read back with a Kafka consumer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use rdkafka::Message;

use crate::common::*;

fn expected_topic(prefix: &str, sample: &Sample) -> String {
    let t = sample.header("Pb-Webhook-Type").expect("type");
    let e = sample
        .header("Pb-Webhook-EventType")
        .map(str::to_string)
        .or_else(|| sample.body_field("eventType"))
        .expect("event type");
    format!("{prefix}.{}.{}", t.to_lowercase(), e.to_lowercase())
}

fn expected_key(sample: &Sample) -> String {
    let corp = sample
        .header("Pb-Webhook-Corpnum")
        .map(str::to_string)
        .or_else(|| sample.body_field("corpNum"));
    match (corp, sample.body_field("itemKey")) {
        (Some(c), Some(i)) => format!("{c}:{i}"),
        _ => sample.header("Pb-Webhook-MID").expect("mid").to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn every_sample_lands_once_byte_identical_with_key_and_headers() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-e2e-");
    let bridge = start(test_config(&brokers, &prefix)).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    let samples = samples("deliveries.jsonl");
    assert!(samples.len() >= 10, "fixtures present");
    for s in &samples {
        let a = post(&bridge, &s.header_list(), s.body.clone().into_bytes()).await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", s.name, a.body);
        assert_eq!(a.body, "OK", "{}", s.name);
    }

    // Every routed topic exists with the configured partitions.
    let topics: BTreeSet<String> = samples.iter().map(|s| expected_topic(&prefix, s)).collect();
    for t in &topics {
        assert_eq!(
            partitions_of(&brokers, t),
            3,
            "{t} created with 3 partitions"
        );
    }
    let mut all_topics: Vec<String> = topics.iter().cloned().collect();
    all_topics.push(format!("{prefix}.unrouted"));
    let n = samples.len();
    let records = read_back(
        &brokers,
        &all_topics,
        n,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(records.len(), n, "exactly one record per delivery");

    let by_mid: BTreeMap<String, _> = records
        .iter()
        .map(|m| (record_header(m, "ce_id").expect("ce_id"), m))
        .collect();
    assert_eq!(by_mid.len(), n, "one record per MID");
    for s in &samples {
        let mid = s.header("Pb-Webhook-MID").expect("mid");
        let m = by_mid
            .get(mid)
            .unwrap_or_else(|| panic!("{}: no record", s.name));
        assert_eq!(m.topic(), expected_topic(&prefix, s), "{}", s.name);
        assert_eq!(
            m.payload(),
            Some(s.body.as_bytes()),
            "{}: value is byte-identical",
            s.name
        );
        assert_eq!(
            m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            Some(expected_key(s)),
            "{}",
            s.name
        );
        // Every header POPBiLL sent travels, under its lower-case name,
        // except the credentials.
        for (k, v) in &s.headers {
            let got = record_header(m, &k.to_ascii_lowercase());
            if k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("x-api-key") {
                assert_eq!(got, None, "{}: {k} must not reach Kafka", s.name);
            } else {
                assert_eq!(got.as_deref(), Some(v.as_str()), "{}: header {k}", s.name);
            }
        }
        for (k, v) in record_headers(m) {
            let v = String::from_utf8_lossy(&v);
            assert!(
                !v.contains("cG9wYmlsbDpzM2NyZXQ") && !v.contains("example-api-key"),
                "{k} leaks a credential"
            );
        }
        assert_eq!(record_header(m, "ce_specversion").as_deref(), Some("1.0"));
        assert_eq!(
            record_header(m, "ce_source").as_deref(),
            Some("https://www.popbill.com")
        );
        let event = s
            .header("Pb-Webhook-EventType")
            .map(str::to_string)
            .or_else(|| s.body_field("eventType"))
            .expect("event");
        assert_eq!(
            record_header(m, "ce_type"),
            Some(format!(
                "com.popbill.webhook.{}.{event}",
                s.header("Pb-Webhook-Type").expect("type")
            ))
        );
        let ce_time = record_header(m, "ce_time").expect("ce_time");
        if let Some(dt) = s.body_field("eventDT") {
            assert_eq!(
                ce_time,
                format!(
                    "{}-{}-{}T{}:{}:{}+09:00",
                    &dt[0..4],
                    &dt[4..6],
                    &dt[6..8],
                    &dt[8..10],
                    &dt[10..12],
                    &dt[12..14]
                )
            );
        }
        let received = record_header(m, "popbill-bridge-received-at").expect("receive time");
        assert!(humantime::parse_rfc3339(&received).is_ok(), "{received}");
    }

    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_deliveries_total",
            &[("outcome", "acknowledged")]
        ),
        n as f64,
        "acknowledged counter equals the deliveries"
    );
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_deliveries_total",
            &[("outcome", "failed")]
        ),
        0.0
    );
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_deliveries_total",
            &[
                ("outcome", "acknowledged"),
                ("event_type", "TAXINVOICE.STATE:NTS")
            ]
        ),
        2.0
    );
    assert_eq!(
        metric(&text, "popbill_bridge_publish_duration_seconds_count", &[]),
        n as f64
    );
    assert_eq!(metric(&text, "popbill_bridge_kafka_up", &[]), 1.0);
    let report = bridge.shutdown().await;
    assert!(report.drained && report.unflushed == 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn bad_deliveries_get_their_documented_answer_and_nothing_else_reaches_kafka() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-bad-");
    let bridge = start(test_config(&brokers, &prefix)).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    // (status, body starts with, published?) for each case.
    let expected: BTreeMap<&str, (u16, &str, bool)> = BTreeMap::from([
        ("not-json", (400, "body is not JSON", false)),
        ("truncated-json", (400, "body is not JSON", false)),
        ("json-array", (400, "body is not a JSON object", false)),
        ("empty-body", (400, "empty body", false)),
        ("invalid-utf8", (400, "body is not UTF-8", false)),
        // Accepted: identity from the content key (see README).
        ("missing-mid", (200, "OK", true)),
        // Accepted: POPBiLL always sends JSON; the body is checked as JSON
        // whatever the label says.
        ("wrong-content-type", (200, "OK", true)),
        ("deep-nesting", (400, "body nests too deeply", false)),
        ("oversized", (413, "body larger than 1048576 bytes", false)),
        // Routed to the fallback topic, never to the topic it names.
        ("topic-injection", (200, "OK", true)),
        // No credentials configured yet: the trust issue adds 401.
        ("wrong-credentials", (200, "OK", true)),
        ("get-method", (405, "method not allowed", false)),
    ]);
    let cases = samples("bad-deliveries.jsonl");
    assert_eq!(
        cases.len(),
        expected.len(),
        "every fixture has an expectation"
    );
    let mut published = Vec::new();
    for c in &cases {
        let (status, body_start, lands) = expected[c.name.as_str()];
        let body: Vec<u8> = match c.name.as_str() {
            "invalid-utf8" => {
                let mut b = vec![0xFF, 0xFE];
                b.extend_from_slice(c.body.trim_start_matches("\\xff\\xfe").as_bytes());
                b
            }
            "deep-nesting" => "[".repeat(100_000).into_bytes(),
            "oversized" => {
                let mut b = b"{\"pad\":\"".to_vec();
                b.resize(8 * 1024 * 1024, b'a');
                b.extend_from_slice(b"\"}");
                b
            }
            _ => c.body.clone().into_bytes(),
        };
        // Unique MIDs per case, so duplicate detection cannot merge them.
        let headers: Vec<(String, String)> = c
            .header_list()
            .into_iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("Pb-Webhook-MID") {
                    (k, format!("{v}-{}", c.name))
                } else {
                    (k, v)
                }
            })
            .collect();
        let (got_status, got_body) = match c.name.as_str() {
            // Refused while the body is still arriving: the client must read
            // the answer as it sends, as curl does.
            "oversized" => raw_post(bridge.webhook_addr, &headers, body.clone(), false).await,
            "get-method" => {
                let a = request(
                    bridge.webhook_addr,
                    Method::GET,
                    "/popbill/webhook",
                    &headers,
                    body.clone(),
                )
                .await;
                (a.status.as_u16(), a.body)
            }
            _ => {
                let a = post(&bridge, &headers, body.clone()).await;
                (a.status.as_u16(), a.body)
            }
        };
        assert_eq!(got_status, status, "{}: {}", c.name, got_body);
        assert!(
            got_body.starts_with(body_start),
            "{}: {:?}",
            c.name,
            got_body
        );
        if c.name == "oversized" {
            // Without a Content-Length the limit holds while reading.
            let (s, b) = raw_post(bridge.webhook_addr, &headers, body.clone(), true).await;
            assert_eq!(
                (s, b.starts_with(body_start)),
                (413, true),
                "chunked oversized: {b}"
            );
        }
        if lands {
            published.push((c.name.clone(), body));
        }
    }

    // Everything accepted went to the fallback (topic-injection, unknown
    // event types) or its route; nothing else reached Kafka.
    let mut topics = vec![
        format!("{prefix}.unrouted"),
        format!("{prefix}.taxinvoice.state.issue"),
    ];
    topics.sort();
    let n = published.len();
    let records = read_back(
        &brokers,
        &topics,
        n,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(records.len(), n, "only the accepted cases reach Kafka");
    let injected = records
        .iter()
        .find(|m| {
            record_header(m, "pb-webhook-eventtype").as_deref() == Some("../../__consumer_offsets")
        })
        .expect("topic-injection record");
    assert_eq!(injected.topic(), format!("{prefix}.unrouted"));
    let no_mid = records
        .iter()
        .find(|m| record_header(m, "pb-webhook-mid").is_none())
        .expect("missing-mid record");
    assert!(
        record_header(no_mid, "ce_id").is_some_and(|id| id.starts_with("content:")),
        "a delivery without MID gets a content identity"
    );

    let text = metrics_text(&bridge).await;
    for (reason, count) in [
        ("not_json", 2.0),
        ("not_object", 1.0),
        ("empty_body", 1.0),
        ("not_utf8", 1.0),
        ("too_deep", 1.0),
        ("body_too_large", 2.0),
        ("method_not_allowed", 1.0),
    ] {
        assert_eq!(
            metric(
                &text,
                "popbill_bridge_rejections_total",
                &[("reason", reason)]
            ),
            count,
            "{reason}"
        );
    }
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_deliveries_total",
            &[("outcome", "rejected")]
        ),
        9.0
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn other_paths_are_404_and_the_fallback_topic_is_created_at_start_up() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-route-");
    let bridge = start(test_config(&brokers, &prefix)).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    let a = request(
        bridge.webhook_addr,
        Method::POST,
        "/other",
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let fallback = format!("{prefix}.unrouted");
    // Every topic a delivery can go to exists once the bridge is ready:
    // one that cannot be created must fail readiness, not the first
    // delivery that needs it (issue #10 item 12).
    for t in [
        format!("{prefix}.kakao.state.result"),
        fallback.clone(),
        format!("{prefix}.deadletter"),
    ] {
        assert!(topic_exists(&brokers, &t), "{t} exists at start-up");
    }
    let headers = vec![
        ("Pb-Webhook-Type".to_string(), "SMS.STATE".to_string()),
        ("Pb-Webhook-MID".to_string(), unique("sms-")),
    ];
    let a = post(&bridge, &headers, br#"{"eventType":"RESULT"}"#.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(topic_exists(&brokers, &fallback));
    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_deliveries_total",
            &[("outcome", "acknowledged"), ("event_type", "other")]
        ),
        1.0
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn missing_topic_without_create_fails_readiness_and_answers_503_naming_it() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-nocreate-");
    let mut cfg = test_config(&brokers, &prefix);
    cfg.topics.create = false;
    cfg.routes.known = vec!["TAXINVOICE.STATE:Issue".into()];
    let bridge = start(cfg).await;

    let until = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = get(bridge.admin_addr, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        if body.contains("missing") || Instant::now() > until {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let topic = format!("{prefix}.taxinvoice.state.issue");
    assert!(body.contains(&topic), "readiness names the topic: {body}");

    let headers = vec![
        (
            "Pb-Webhook-Type".to_string(),
            "TAXINVOICE.STATE".to_string(),
        ),
        ("Pb-Webhook-MID".to_string(), unique("nc-")),
        ("Pb-Webhook-EventType".to_string(), "Issue".to_string()),
    ];
    let a = post(&bridge, &headers, br#"{"eventType":"Issue"}"#.to_vec()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body.contains(&topic), "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));
    assert!(
        !topic_exists(&brokers, &topic),
        "the bridge did not create it"
    );
    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_publish_failures_total",
            &[("reason", "topic_missing")]
        ),
        1.0
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn replication_above_the_broker_count_is_named_with_its_fix() {
    // The test broker is a single node; the default replication factor
    // is 3, so no topic can be created.
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-rf-");
    let mut cfg = test_config(&brokers, &prefix);
    cfg.topics.replication_factor = 3;
    cfg.routes.known = vec!["TAXINVOICE.STATE:Issue".into()];
    cfg.dead_letter.topic = format!("{prefix}.deadletter");
    let bridge = start(cfg).await;
    let fix = "set topics.replication_factor = 1";

    // Readiness names every topic the bridge writes to — routed, fallback
    // and dead-letter — and the cause with its fix.
    let until = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = get(bridge.admin_addr, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        if body.contains(fix) && body.contains(".deadletter") || Instant::now() > until {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for t in ["taxinvoice.state.issue", "unrouted", "deadletter"] {
        assert!(body.contains(&format!("{prefix}.{t}")), "{t}: {body}");
    }
    assert!(body.contains("1 broker"), "{body}");
    assert!(body.contains(fix), "{body}");

    // A delivery gets the same cause, not a bare "does not exist".
    let headers = vec![
        (
            "Pb-Webhook-Type".to_string(),
            "TAXINVOICE.STATE".to_string(),
        ),
        ("Pb-Webhook-MID".to_string(), unique("rf-")),
        ("Pb-Webhook-EventType".to_string(), "Issue".to_string()),
    ];
    let a = post(&bridge, &headers, br#"{"eventType":"Issue"}"#.to_vec()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));
    assert!(a.body.contains(fix), "{}", a.body);
    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_publish_failures_total",
            &[("reason", "topic_not_creatable")]
        ),
        1.0
    );
    bridge.shutdown().await;
}

/// A valid delivery body of exactly `size` bytes.
fn body_of_size(size: usize) -> Vec<u8> {
    let head =
        br#"{"corpNum":"1234567890","itemKey":"025111409301000001","eventType":"Issue","pad":""#;
    let mut b = head.to_vec();
    b.resize(size - 2, b'a');
    b.extend_from_slice(b"\"}");
    assert_eq!(b.len(), size);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_body_at_the_limit_is_published_and_one_byte_over_is_413() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-size-");
    let mut cfg = test_config(&brokers, &prefix);
    cfg.routes.known = vec!["TAXINVOICE.STATE:Issue".into()];
    let limit = cfg.server.max_body_bytes;
    assert_eq!(limit, 1024 * 1024, "the documented default");
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    // Request headers travel with the record: send big ones too.
    let padding = "x".repeat(12 * 1024);
    let mut published = Vec::new();
    for (case, size, want) in [
        ("between", 1_040_000, 200),
        ("at the limit", limit, 200),
        ("one byte over", limit + 1, 413),
    ] {
        let mid = unique("size-");
        let mut headers = issue_headers(&mid);
        headers.push(("Pb-Custom-Padding".into(), padding.clone()));
        // Refused while the body is still arriving: read the answer as it
        // sends (as curl does); the others through an ordinary client.
        let (status, answer) = if want == 413 {
            raw_post(bridge.webhook_addr, &headers, body_of_size(size), false).await
        } else {
            let a = post(&bridge, &headers, body_of_size(size)).await;
            (a.status.as_u16(), a.body)
        };
        assert_eq!(status, want, "{case} ({size} bytes): {answer}");
        if want == 200 {
            assert_eq!(answer, "OK", "{case}");
            published.push((mid, size));
        } else {
            assert!(answer.starts_with("body larger than"), "{case}: {answer}");
        }
    }
    let records = read_back(
        &brokers,
        &[format!("{prefix}.taxinvoice.state.issue")],
        2,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(records.len(), 2, "both accepted bodies are in Kafka");
    for (mid, size) in published {
        let m = records
            .iter()
            .find(|m| record_header(m, "ce_id").as_deref() == Some(mid.as_str()))
            .unwrap_or_else(|| panic!("{size}: no record"));
        assert_eq!(m.payload(), Some(&body_of_size(size)[..]), "{size}");
    }
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_topic_too_small_for_the_largest_body_is_named_with_the_setting_to_change() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-small-");
    let small = format!("{prefix}.small");
    // A topic made elsewhere, with a record limit below what the bridge
    // accepts (topic-level, so the shared broker is untouched).
    create_topic_with(&brokers, &small, &[("max.message.bytes", "500000")]).await;
    let mut cfg = test_config(&brokers, &prefix);
    cfg.routes.known = vec!["TAXINVOICE.STATE:Issue".into()];
    cfg.routes
        .overrides
        .insert("TAXINVOICE.STATE:Issue".into(), small.clone());
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    // Readiness names the topic and the setting (small deliveries still
    // go through, so it stays ready).
    let until = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (_, body) = get(bridge.admin_addr, "/readyz").await;
        if body.contains("max.message.bytes") || Instant::now() > until {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.contains(&small), "{body}");
    assert!(body.contains("max.message.bytes"), "{body}");

    let a = post(&bridge, &issue_headers(&unique("ok-")), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = post(
        &bridge,
        &issue_headers(&unique("big-")),
        body_of_size(600_000),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(a.body.contains("max.message.bytes"), "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));
    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_publish_failures_total",
            &[("reason", "record_too_large")]
        ),
        1.0
    );
    bridge.shutdown().await;
}

/// Issue #19: Kafka must have stored every delivery answered `OK`, also on
/// partitions that have just come into existence. Two bridges start on
/// topics that do not exist yet, and 16 senders post flat out from the
/// moment the bridges listen, long before either is ready, over six event
/// types and many document keys (every partition of six new topics). Each
/// delivery answered `OK` must then be read back from Kafka.
///
/// Before the fix, librdkafka's implicit acknowledgement on a brand-new
/// partition answered `OK` for records that never reached the log (a
/// report with offset -1001). `POPBILL_FRESH_TOPIC_ROUNDS` sets the rounds
/// (3 by default; each makes six new topics of six partitions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn every_ok_is_in_kafka_when_two_bridges_write_at_once_to_topics_being_created() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let rounds: usize = std::env::var("POPBILL_FRESH_TOPIC_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    const EVENTS: [&str; 6] = ["Issue", "CancelIssue", "CLOSEDOWN", "NTS", "OPEN", "MANUAL"];
    let (mut sent_all, mut ok_all, mut unconfirmed_all, mut not_serving_all) = (0, 0, 0.0, 0.0);
    for round in 0..rounds {
        let prefix = unique("it-fresh-");
        let config = || {
            let mut c = test_config(&brokers, &prefix);
            c.topics.partitions = 6;
            c
        };
        let bridges = [start(config()).await, start(config()).await];
        let targets = [bridges[0].webhook_addr, bridges[1].webhook_addr];
        let until = Instant::now() + Duration::from_millis(2500);
        let mut senders = Vec::new();
        for sender in 0..16usize {
            let prefix = prefix.clone();
            senders.push(tokio::spawn(async move {
                let mut oks = Vec::new();
                let mut sent = 0usize;
                let mut n = 0usize;
                while Instant::now() < until {
                    n += 1;
                    let mid = format!("{prefix}-{sender}-{n}");
                    let event = EVENTS[(sender + n) % EVENTS.len()];
                    let mut headers = issue_headers(&mid);
                    for (k, v) in headers.iter_mut() {
                        if k == "Pb-Webhook-EventType" {
                            *v = event.to_string();
                        }
                    }
                    let body = format!(
                        r#"{{"corpNum":"1234567890","itemKey":"0251114093010{:05}","stateCode":300,"eventType":"{event}"}}"#,
                        (sender * 7919 + n) % 100_000
                    );
                    let at = targets[(sender + n) % 2];
                    let a = request(at, Method::POST, "/popbill/webhook", &headers, body.into_bytes()).await;
                    sent += 1;
                    if a.status == StatusCode::OK {
                        oks.push(mid);
                    }
                }
                (sent, oks)
            }));
        }
        let mut acked = BTreeSet::new();
        let mut sent = 0;
        for s in senders {
            let (n, oks) = s.await.expect("sender");
            sent += n;
            acked.extend(oks);
        }
        let topics: Vec<String> = EVENTS
            .iter()
            .map(|e| format!("{prefix}.taxinvoice.state.{}", e.to_lowercase()))
            .collect();
        let records = read_back(
            &brokers,
            &topics,
            acked.len(),
            Duration::from_secs(30),
            Duration::from_secs(2),
        )
        .await;
        let stored: BTreeSet<String> = records
            .iter()
            .filter_map(|m| record_header(m, "ce_id"))
            .collect();
        let missing: Vec<&String> = acked.iter().filter(|m| !stored.contains(*m)).collect();
        let (mut unconfirmed, mut not_serving) = (0.0, 0.0);
        for b in &bridges {
            unconfirmed += scrape(
                b,
                "popbill_bridge_kafka_unconfirmed_reports_total",
                &[("writer", "delivery")],
            )
            .await;
            not_serving += scrape(
                b,
                "popbill_bridge_publish_failures_total",
                &[("reason", "topic_not_serving")],
            )
            .await;
        }
        eprintln!(
            "fresh topics, round {}: sent {sent}, acknowledged {}, in Kafka {}, acknowledged but missing {}, unconfirmed reports {unconfirmed}, 503 topic_not_serving {not_serving}",
            round + 1,
            acked.len(),
            stored.len(),
            missing.len()
        );
        assert!(
            missing.is_empty(),
            "round {}: {} deliveries answered OK are not in Kafka, e.g. {:?}",
            round + 1,
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        );
        assert!(
            !acked.is_empty(),
            "round {}: nothing was acknowledged",
            round + 1
        );
        for b in bridges {
            b.shutdown().await;
        }
        sent_all += sent;
        ok_all += acked.len();
        unconfirmed_all += unconfirmed;
        not_serving_all += not_serving;
    }
    eprintln!(
        "fresh topics, {rounds} rounds: sent {sent_all}, acknowledged {ok_all}, acknowledged but missing 0, unconfirmed reports {unconfirmed_all}, 503 topic_not_serving {not_serving_all}"
    );
}
