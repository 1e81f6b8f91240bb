//! Exactly one Kafka record per POPBiLL event, across retries, concurrent
//! copies, replicas and restarts — against the real broker.

use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::common::*;

fn issue_topic(prefix: &str) -> String {
    format!("{prefix}.taxinvoice.state.issue")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn the_same_mid_twice_gives_one_record_and_two_oks() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-dup-");
    let bridge = start(test_config(&brokers, &prefix)).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let mid = unique("mid-");

    for _ in 0..2 {
        let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));
    }
    assert_eq!(deliveries(&bridge, "acknowledged").await, 1.0);
    assert_eq!(deliveries(&bridge, "duplicate").await, 1.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn fifty_concurrent_copies_give_one_record_and_fifty_oks() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-dup50-");
    let bridge = start(test_config(&brokers, &prefix)).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let mid = unique("mid-");

    let addr = bridge.webhook_addr;
    let copies: Vec<_> = (0..50)
        .map(|_| {
            let headers = issue_headers(&mid);
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
    for c in copies {
        let a = c.await.expect("request task");
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));
    }
    assert_eq!(deliveries(&bridge, "acknowledged").await, 1.0);
    assert_eq!(deliveries(&bridge, "duplicate").await, 49.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_copy_to_another_replica_is_recognised_through_the_ledger() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-dup2-");
    let a = start(test_config(&brokers, &prefix)).await;
    let b = start(test_config(&brokers, &prefix)).await;
    wait_ready(&a, Duration::from_secs(30)).await;
    wait_ready(&b, Duration::from_secs(30)).await;
    let mid = unique("mid-");

    let r = post(&a, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // B learns of it from the ledger (POPBiLL's retries come minutes later;
    // here we wait for the ledger record to reach B).
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if remembered(&b).await >= 1.0 {
            break;
        }
        assert!(Instant::now() < until, "B never read A's ledger record");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = post(&b, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(deliveries(&b, "duplicate").await, 1.0);
    assert_eq!(deliveries(&b, "acknowledged").await, 0.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_replica_killed_and_restarted_still_recognises_the_event() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-dupkill-");
    let mid = unique("mid-");
    let mut first = BridgeProcess::start(&brokers, &prefix).await;
    let r = post(&first, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The ledger write comes after the answer: wait until Kafka confirmed
    // it, then kill -9.
    let until = Instant::now() + Duration::from_secs(10);
    while scrape(&first, "popbill_bridge_dedup_ledger_writes_total", &[]).await < 1.0 {
        assert!(
            Instant::now() < until,
            "the ledger record was never written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill9();

    let second = BridgeProcess::start(&brokers, &prefix).await;
    assert!(
        remembered(&second).await >= 1.0,
        "ready means the ledger was read"
    );
    let r = post(&second, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(deliveries(&second, "duplicate").await, 1.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn with_detection_off_every_copy_is_published() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-nodup-");
    let mut cfg = test_config(&brokers, &prefix);
    cfg.dedup.enabled = false;
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let mid = unique("mid-");
    for _ in 0..2 {
        let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    assert_eq!(deliveries(&bridge, "acknowledged").await, 2.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 2).await,
        2
    );
    bridge.shutdown().await;
}

/// The claim (identity, body digest) the bridge computes for a tax-invoice
/// delivery with this MID and body, as the ledger lists it.
fn ledger_line(mid: &str, body: &[u8], topic: &str) -> String {
    let mut h = hyper::HeaderMap::new();
    for (k, v) in issue_headers(mid) {
        h.insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            hyper::header::HeaderValue::from_str(&v).expect("value"),
        );
    }
    let d = popbill_bridge::delivery::Delivery::parse(&h, body).expect("valid");
    let id = popbill_bridge::dedup::identity::Identity::of(
        &d,
        popbill_bridge::dedup::identity::Namespace::Routed,
        topic,
    );
    format!("{:032x} {:016x} 0 0 {topic} {mid}\n", id.digest, id.body)
}

async fn remembered(bridge: &impl Listeners) -> f64 {
    scrape(bridge, "popbill_bridge_dedup_remembered_events", &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_forged_mid_with_a_junk_body_does_not_suppress_the_genuine_event() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-forge-");
    let bridge = start(test_config(&brokers, &prefix)).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let mid = unique("mid-");

    // A stranger posts first with POPBiLL's MID and a junk body.
    let junk = br#"{"junk":true}"#.to_vec();
    let a = post(&bridge, &issue_headers(&mid), junk.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // The genuine event: published, not taken for a duplicate.
    let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(deliveries(&bridge, "acknowledged").await, 2.0);
    assert_eq!(deliveries(&bridge, "duplicate").await, 0.0);
    assert_eq!(
        scrape(&bridge, "popbill_bridge_dedup_conflicts_total", &[]).await,
        1.0
    );
    // POPBiLL's retry of the genuine event is a true duplicate.
    let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(deliveries(&bridge, "duplicate").await, 1.0);

    let records = read_back(
        &brokers,
        &[issue_topic(&prefix)],
        2,
        Duration::from_secs(15),
        Duration::from_secs(1),
    )
    .await;
    let bodies: Vec<&[u8]> = records
        .iter()
        .filter(|m| record_header(m, "ce_id").as_deref() == Some(mid.as_str()))
        .filter_map(|m| rdkafka::Message::payload(m))
        .collect();
    assert!(
        bodies.contains(&ISSUE_BODY),
        "the genuine body is on its topic"
    );
    assert_eq!(bodies.len(), 2);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn another_replica_recognises_the_genuine_event_after_a_forgery_and_ledger_keys_differ() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-forge2-");
    let a = start(test_config(&brokers, &prefix)).await;
    wait_ready(&a, Duration::from_secs(30)).await;
    let mid = unique("mid-");
    let r = post(&a, &issue_headers(&mid), br#"{"junk":1}"#.to_vec()).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = post(&a, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!(r.status, StatusCode::OK);

    // A second replica reads both from the ledger: the genuine retry is a
    // duplicate there, with no third record.
    let b = start(test_config(&brokers, &prefix)).await;
    wait_ready(&b, Duration::from_secs(30)).await;
    let until = Instant::now() + Duration::from_secs(10);
    while remembered(&b).await < 2.0 {
        assert!(Instant::now() < until, "B never read both ledger entries");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = post(&b, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(deliveries(&b, "duplicate").await, 1.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 2).await,
        2
    );

    // Both ledger batches begin with the same identity; their keys
    // still differ, so compaction could never drop one for the other.
    let ledger = read_back(
        &brokers,
        &[format!("{prefix}.ledger")],
        2,
        Duration::from_secs(15),
        Duration::from_secs(1),
    )
    .await;
    let keys: std::collections::BTreeSet<Vec<u8>> = ledger
        .iter()
        .filter_map(|m| rdkafka::Message::key(m).map(<[u8]>::to_vec))
        .collect();
    assert_eq!(ledger.len(), 2, "one batch per confirmation here");
    assert_eq!(keys.len(), 2, "ledger keys never repeat");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_dead_lettered_copy_does_not_vouch_for_the_valid_event() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-dlmid-");
    let mut cfg = test_config(&brokers, &prefix);
    // A verified sender: its malformed deliveries are dead-lettered.
    cfg.access.allow = vec!["127.0.0.1/32".into()];
    cfg.dead_letter.topic = format!("{prefix}.deadletter");
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let mid = unique("mid-");

    let a = post(&bridge, &issue_headers(&mid), b"{not json".to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "dead-lettered: {}", a.body);
    let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(deliveries(&bridge, "duplicate").await, 0.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1,
        "the valid event is on its routed topic"
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_ledger_record_from_a_clock_ahead_does_not_make_new_confirmations_forgotten() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-clock-");
    let mut cfg = test_config(&brokers, &prefix);
    cfg.dedup.window = Duration::from_secs(60);
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    // Another replica, its clock 50 minutes ahead (the broker accepts
    // timestamps up to an hour ahead), records some event.
    let ahead = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        + 50 * 60 * 1000;
    let other = unique("mid-other-");
    produce_raw(
        &brokers,
        &format!("{prefix}.ledger"),
        0,
        ahead,
        &ledger_line(&other, ISSUE_BODY, &issue_topic(&prefix)),
    )
    .await;
    let until = Instant::now() + Duration::from_secs(10);
    while remembered(&bridge).await < 1.0 {
        assert!(Instant::now() < until, "the ledger record never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Our own confirmations must still be remembered.
    let mid = unique("mid-");
    for _ in 0..2 {
        let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    assert_eq!(deliveries(&bridge, "duplicate").await, 1.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn partitions_added_to_the_ledger_later_are_read() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    use rdkafka::client::DefaultClientContext;
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-ledgerparts-");
    let bridge = start(test_config(&brokers, &prefix)).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let ledger = format!("{prefix}.ledger");
    assert_eq!(partitions_of(&brokers, &ledger), 2);

    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("admin");
    let added = admin
        .create_partitions(&[NewPartitions::new(&ledger, 3)], &AdminOptions::new())
        .await
        .expect("create partitions");
    assert!(added.iter().all(Result::is_ok), "{added:?}");

    // Another replica, knowing the new partition, records an event there.
    let mid = unique("mid-");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    produce_raw(
        &brokers,
        &ledger,
        2,
        now,
        &ledger_line(&mid, ISSUE_BODY, &issue_topic(&prefix)),
    )
    .await;
    let until = Instant::now() + Duration::from_secs(15);
    while remembered(&bridge).await < 1.0 {
        assert!(
            Instant::now() < until,
            "the record on the new ledger partition was never read"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(deliveries(&bridge, "duplicate").await, 1.0);
    bridge.shutdown().await;
}
