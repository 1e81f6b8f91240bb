//! SIGTERM under steady load: readiness fails at once, the bridge keeps
//! serving through the propagation delay, then stops accepting; every
//! request in flight gets its real answer, every `OK` is in Kafka, and the
//! process exits 0 within its budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn sigterm_under_load_answers_everything_in_flight_and_loses_no_ok() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-term-");
    let mut bridge = BridgeProcess::start_with(
        &brokers,
        &prefix,
        &[
            ("POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY", "1s"),
            ("POPBILL_BRIDGE_SERVER__SHUTDOWN_TIMEOUT", "5s"),
        ],
    )
    .await;

    // Eight senders, each a closed loop of deliveries with unique MIDs,
    // until the bridge stops answering.
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for s in 0..8 {
        let (stop, addr, prefix) = (stop.clone(), bridge.webhook, prefix.clone());
        senders.push(tokio::spawn(async move {
            let mut answered: Vec<(String, StatusCode)> = Vec::new();
            let mut refused = 0usize;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let mid = format!("{prefix}-s{s}-{i}");
                let headers = issue_headers(&mid);
                let req = try_post(addr, &headers, ISSUE_BODY.to_vec());
                match tokio::time::timeout(Duration::from_secs(10), req).await {
                    Ok(Some(status)) => answered.push((mid, status)),
                    Ok(None) => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(_) => panic!("a request hung past every deadline"),
                }
            }
            (answered, refused)
        }));
    }

    tokio::time::sleep(Duration::from_millis(700)).await;
    let admin = bridge.admin;
    let t0 = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &bridge.child.id().to_string()])
        .status();
    // Readiness turns at once, while deliveries are still accepted.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (ready, _) = get(admin, "/readyz").await;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);
    let during = try_post(
        bridge.webhook,
        &issue_headers(&unique("during-")),
        ISSUE_BODY.to_vec(),
    )
    .await;
    assert_eq!(
        during,
        Some(StatusCode::OK),
        "still serving during the delay"
    );

    let exit = tokio::task::spawn_blocking(move || {
        let s = bridge.wait_exit(Duration::from_secs(15));
        (s, bridge)
    })
    .await
    .expect("waiter");
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let status = exit.0.expect("exited");
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(1 + 5 + 2), "took {took:?}");

    let mut oks = Vec::new();
    let mut total = 0;
    for s in senders {
        let (answered, _refused) = s.await.expect("sender");
        total += answered.len();
        for (mid, status) in answered {
            assert!(
                status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
                "{mid}: {status}"
            );
            if status == StatusCode::OK {
                oks.push(mid);
            }
        }
    }
    assert!(
        oks.len() > 50,
        "steady load: only {} OKs of {total}",
        oks.len()
    );

    let records = read_back(
        &brokers,
        &[format!("{prefix}.taxinvoice.state.issue")],
        oks.len() + 1,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    let ids: std::collections::HashSet<String> = records
        .iter()
        .filter_map(|m| record_header(m, "ce_id"))
        .collect();
    let missing: Vec<&String> = oks.iter().filter(|m| !ids.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged deliveries missing from Kafka: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// A POST on a fresh connection: the status, or None when the connection
/// was refused or closed without an answer (the bridge stopped accepting).
async fn try_post(
    addr: std::net::SocketAddr,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Option<StatusCode> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let mut req = format!(
        "POST /popbill/webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(&body);
    s.write_all(&bytes).await.ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.ok()?;
    let text = String::from_utf8_lossy(&out);
    let code: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
    StatusCode::from_u16(code).ok()
}

/// An event Kafka confirms only during shutdown — its sender
/// hung up before the answer, so nothing waits for it in the drain — must
/// still get its ledger entry. Librdkafka's mock cluster makes Kafka slow
/// on demand (a real broker cannot be slowed without stopping it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_confirmed_during_shutdown_still_gets_its_ledger_entry() {
    use tokio::io::AsyncWriteExt;

    let kafka = MockKafka::new();
    let mut cfg = kafka.config(&unique("it-flushledger-"));
    // The ledger writer's last batch at shutdown. With Kafka transactions
    // (the default) an event's line is committed with it and there is no
    // such batch: a_replica_killed_mid_transaction_* proves that mode.
    cfg.kafka.transactions.enabled = false;
    cfg.topics.partitions = 1;
    cfg.dedup.ledger_partitions = 1;
    cfg.server.shutdown_timeout = Duration::from_secs(8);
    cfg.dead_letter.enabled = false;
    let ledger = cfg.dedup.ledger_topic.clone();
    let bridge = kafka.start_ready(cfg).await;

    // Kafka now takes 1.5 s to answer.
    kafka
        .cluster
        .broker_round_trip_time(1, Duration::from_millis(1500))
        .expect("rtt");
    let mid = unique("mid-");
    let mut stream = tokio::net::TcpStream::connect(bridge.webhook_addr)
        .await
        .expect("connect");
    let mut req = format!(
        "POST /popbill/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n",
        ISSUE_BODY.len()
    );
    for (k, v) in issue_headers(&mid) {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("head");
    stream.write_all(ISSUE_BODY).await.expect("body");
    // The sender gives up before Kafka answers; shutdown begins.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    let report = bridge.shutdown().await;
    assert_eq!(report.unflushed, 0, "{report:?}");

    let records = read_back(
        &kafka.brokers(),
        &[ledger],
        1,
        Duration::from_secs(10),
        Duration::from_millis(500),
    )
    .await;
    let lines: Vec<String> = records
        .iter()
        .filter_map(|m| rdkafka::Message::payload(m))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert!(
        lines.iter().any(|l| l.contains(&mid)),
        "no ledger entry for the event confirmed during shutdown: {lines:?}"
    );
    drop(kafka);
}
