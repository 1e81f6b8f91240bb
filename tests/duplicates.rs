//! Exactly one Kafka record per POPBiLL event, across retries, concurrent
//! copies, replicas and restarts — against the real broker.

mod common;

use std::time::{Duration, Instant};

use hyper::StatusCode;

use common::*;

fn issue_topic(prefix: &str) -> String {
    format!("{prefix}.taxinvoice.state.issue")
}

async fn counter(bridge_admin: std::net::SocketAddr, outcome: &str) -> f64 {
    let text = get(bridge_admin, "/metrics").await.1;
    metric(
        &text,
        "popbill_bridge_deliveries_total",
        &[("outcome", outcome)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_mid_twice_gives_one_record_and_two_oks() {
    let brokers = bootstrap();
    let prefix = unique("it-dup-");
    let bridge = start(test_config(&brokers, &prefix)).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let mid = unique("mid-");

    for _ in 0..2 {
        let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));
    }
    assert_eq!(counter(bridge.admin_addr, "acknowledged").await, 1.0);
    assert_eq!(counter(bridge.admin_addr, "duplicate").await, 1.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_copies_give_one_record_and_fifty_oks() {
    let brokers = bootstrap();
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
    assert_eq!(counter(bridge.admin_addr, "acknowledged").await, 1.0);
    assert_eq!(counter(bridge.admin_addr, "duplicate").await, 49.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_to_another_replica_is_recognised_through_the_ledger() {
    let brokers = bootstrap();
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
        let text = metrics_text(&b).await;
        if metric(&text, "popbill_bridge_dedup_remembered_events", &[]) >= 1.0 {
            break;
        }
        assert!(Instant::now() < until, "B never read A's ledger record");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = post(&b, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(counter(b.admin_addr, "duplicate").await, 1.0);
    assert_eq!(counter(b.admin_addr, "acknowledged").await, 0.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_and_restarted_still_recognises_the_event() {
    let brokers = bootstrap();
    let prefix = unique("it-dupkill-");
    let mid = unique("mid-");
    let mut first = BridgeProcess::start(&brokers, &prefix).await;
    let r = request(
        first.webhook,
        hyper::Method::POST,
        "/popbill/webhook",
        &issue_headers(&mid),
        ISSUE_BODY.to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Give the ledger write (after the answer) a moment, then kill -9.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill9();

    let second = BridgeProcess::start(&brokers, &prefix).await;
    let text = get(second.admin, "/metrics").await.1;
    assert!(
        metric(&text, "popbill_bridge_dedup_remembered_events", &[]) >= 1.0,
        "ready means the ledger was read"
    );
    let r = request(
        second.webhook,
        hyper::Method::POST,
        "/popbill/webhook",
        &issue_headers(&mid),
        ISSUE_BODY.to_vec(),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(counter(second.admin, "duplicate").await, 1.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 1).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_detection_off_every_copy_is_published() {
    let brokers = bootstrap();
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
    assert_eq!(counter(bridge.admin_addr, "acknowledged").await, 2.0);
    assert_eq!(
        records_with_id(&brokers, &issue_topic(&prefix), &mid, 2).await,
        2
    );
    bridge.shutdown().await;
}
