//! Dead letters on their topic, against the real broker: a malformed
//! delivery from a verified sender is kept byte for byte on the
//! dead-letter topic, once per event, with its reason; without credentials
//! it is refused. (The rest of the HTTP edge — credentials, allow-list,
//! limits, TLS — is `http_edge`, on the mock cluster.)

use std::time::Duration;

use hyper::StatusCode;
use rdkafka::Message;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn malformed_deliveries_from_a_verified_sender_go_to_the_dead_letter_topic() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-dlq-");
    let mut cfg = test_config(&brokers, &prefix);
    cfg.auth.api_keys = vec!["k".into()];
    cfg.dead_letter.topic = format!("{prefix}.deadletter");
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    let bad = samples("bad-deliveries.jsonl");
    let by_name = |n: &str| bad.iter().find(|s| s.name == n).expect("case").clone();
    let mut kept = Vec::new();
    for (name, reason) in [
        ("not-json", "not_json"),
        ("json-array", "not_object"),
        ("invalid-utf8", "not_utf8"),
    ] {
        let c = by_name(name);
        let body: Vec<u8> = if name == "invalid-utf8" {
            let mut b = vec![0xFF, 0xFE];
            b.extend_from_slice(c.body.trim_start_matches("\\xff\\xfe").as_bytes());
            b
        } else {
            c.body.clone().into_bytes()
        };
        let mid = unique("dl-");
        let h = with_mid(&with_auth(&c.header_list(), None, Some("k")), &mid);
        let a = post(&bridge, &h, body.clone()).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (StatusCode::OK, "OK"),
            "{name}"
        );
        // The same broken delivery again: a duplicate, not a second record.
        let a = post(&bridge, &h, body.clone()).await;
        assert_eq!(a.status, StatusCode::OK, "{name} again");
        kept.push((mid, reason, body));
    }
    // Without credentials the same bytes are refused (401), and a body
    // that is hostile rather than broken is refused even when verified.
    let c = by_name("not-json");
    let a = post(&bridge, &c.header_list(), c.body.clone().into_bytes()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let deep = with_auth(&issue_headers(&unique("deep-")), None, Some("k"));
    let a = post(
        &bridge,
        &deep,
        format!("{{\"a\":{}", "[".repeat(100_000)).into_bytes(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let recs = read_back(
        &brokers,
        &[format!("{prefix}.deadletter")],
        3,
        Duration::from_secs(15),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(recs.len(), 3, "one record per broken delivery");
    for (mid, reason, body) in &kept {
        let m = recs
            .iter()
            .find(|m| record_header(m, "ce_id").as_deref() == Some(mid.as_str()))
            .expect("kept");
        assert_eq!(m.payload(), Some(&body[..]), "raw bytes kept");
        assert_eq!(
            record_header(m, "popbill-bridge-rejection-reason").as_deref(),
            Some(*reason)
        );
        assert_eq!(record_header(m, "x-api-key"), None);
    }
    // Each broken event is one dead letter; each broken request (copies
    // included) a rejection.
    assert_eq!(
        scrape(&bridge, "popbill_bridge_dead_letters_total", &[]).await,
        3.0
    );
    assert_eq!(rejections(&bridge, "not_json").await, 2.0);
    bridge.shutdown().await;
}
