//! The HTTP edge — only POPBiLL gets in, nothing hostile gets through,
//! every rejection is clear: credentials (right, wrong, missing, rotated),
//! the source allow-list with and without a trusted proxy, slow senders,
//! load shedding, connection and header limits, broken HTTP, TLS.
//!
//! Kafka is not the point here, so it is librdkafka's mock cluster in this
//! process: these run with a plain `cargo test`, no broker, no JVM.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

fn bump_mtime(path: &std::path::Path, secs: u64) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(secs))
        .expect("mtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_right_wrong_missing_and_rotated() {
    let kafka = MockKafka::new();
    let prefix = unique("it-auth-");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("api-keys");
    std::fs::write(&keys, "example-api-key\n").expect("write");
    let mut cfg = kafka.config(&prefix);
    cfg.auth.basic = vec!["popbill:s3cret".into()];
    cfg.auth.api_key_files = vec![keys.clone()];
    cfg.limits.reload_interval = Duration::from_millis(100);
    let bridge = kafka.start_ready(cfg).await;

    // The sample POPBiLL sends with both mechanisms turned on.
    let sample = samples("deliveries.jsonl")
        .into_iter()
        .find(|s| s.name == "taxinvoice-with-auth-and-custom-header")
        .expect("sample");
    let a = post(
        &bridge,
        &sample.header_list(),
        sample.body.clone().into_bytes(),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));

    let base = issue_headers("unused");
    let cases: Vec<(&str, Option<&str>, Option<&str>)> = vec![
        ("wrong basic", Some(BAD_BASIC), Some("example-api-key")),
        ("wrong key", Some(GOOD_BASIC), Some("nope")),
        ("missing both", None, None),
        ("missing key", Some(GOOD_BASIC), None),
    ];
    for (what, b, k) in &cases {
        let h = with_mid(&with_auth(&base, *b, *k), &unique("auth-"));
        let a = post(&bridge, &h, ISSUE_BODY.to_vec()).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            a.headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Basic")),
            "{what}: WWW-Authenticate"
        );
        assert!(!a.body.contains("s3cret") && !a.body.contains("example-api-key"));
    }
    assert_eq!(
        rejections(&bridge, "unauthorized").await,
        cases.len() as f64
    );

    // Rotation: the file now holds the old and the new key, then only the new.
    std::fs::write(&keys, "example-api-key\nrotated-key\n").expect("write");
    bump_mtime(&keys, 5);
    tokio::time::sleep(Duration::from_millis(400)).await;
    for key in ["example-api-key", "rotated-key"] {
        let h = with_auth(&issue_headers(&unique("rot-")), Some(GOOD_BASIC), Some(key));
        assert_eq!(
            post(&bridge, &h, ISSUE_BODY.to_vec()).await.status,
            StatusCode::OK,
            "{key}"
        );
    }
    std::fs::write(&keys, "rotated-key\n").expect("write");
    bump_mtime(&keys, 10);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let old = with_auth(
        &issue_headers(&unique("rot-")),
        Some(GOOD_BASIC),
        Some("example-api-key"),
    );
    assert_eq!(
        post(&bridge, &old, ISSUE_BODY.to_vec()).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Nothing refused reached Kafka: exactly the three accepted records.
    let topic = format!("{prefix}.taxinvoice.state.issue");
    let recs = read_back(
        &kafka.brokers(),
        &[topic],
        3,
        Duration::from_secs(15),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(recs.len(), 3);
    for m in &recs {
        for (k, v) in record_headers(m) {
            assert!(
                k != "authorization" && k != "x-api-key",
                "{k} reached Kafka"
            );
            let v = String::from_utf8_lossy(&v);
            assert!(
                !v.contains(GOOD_BASIC) && !v.contains("api-key") && !v.contains("rotated-key")
            );
        }
    }
    let text = metrics_text(&bridge).await;
    assert!(!text.contains("s3cret") && !text.contains("rotated-key"));
    assert_eq!(
        metric(&text, "popbill_bridge_auth_reload_failures_total", &[]),
        0.0
    );

    // The file emptied by mistake does not let everyone in; the
    // last good key stays valid and the failure is counted.
    std::fs::write(&keys, "# emptied by mistake\n").expect("write");
    bump_mtime(&keys, 15);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let nokey = with_auth(&issue_headers(&unique("rot-")), Some(GOOD_BASIC), None);
    assert_eq!(
        post(&bridge, &nokey, ISSUE_BODY.to_vec()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let kept = with_auth(
        &issue_headers(&unique("rot-")),
        Some(GOOD_BASIC),
        Some("rotated-key"),
    );
    assert_eq!(
        post(&bridge, &kept, ISSUE_BODY.to_vec()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        scrape(&bridge, "popbill_bridge_auth_reload_failures_total", &[]).await,
        1.0
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_believes_forwarded_headers_only_from_trusted_proxies() {
    let kafka = MockKafka::new();
    let prefix = unique("it-allow-");
    let from_popbill = |mid: &str| {
        let mut h = issue_headers(mid);
        h.push(("X-Forwarded-For".into(), "54.180.62.221".into()));
        h
    };

    // POPBiLL's preset only; loopback is no proxy of ours: a spoofed
    // X-Forwarded-For is never even read — the connection is closed at
    // accept.
    let mut cfg = kafka.config(&prefix);
    cfg.access.allow = vec!["popbill".into()];
    let strict = kafka.start(cfg).await;
    let (status, _) = raw_post(
        strict.webhook_addr,
        &from_popbill(&unique("a-")),
        ISSUE_BODY.to_vec(),
        false,
    )
    .await;
    assert_eq!(status, 0, "closed without an answer");
    assert_eq!(http_errors(&strict, "forbidden_at_accept").await, 1.0);

    // Behind a trusted proxy (loopback plays the ingress), the forwarded
    // address is believed — and a forged hop further left is not.
    let mut cfg = kafka.config(&prefix);
    cfg.access.allow = vec!["popbill".into()];
    cfg.access.trusted_proxies = vec!["127.0.0.0/8".into()];
    let proxied = kafka.start_ready(cfg).await;
    let a = post(&proxied, &from_popbill(&unique("b-")), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let mut forged = issue_headers(&unique("c-"));
    forged.push((
        "X-Forwarded-For".into(),
        "54.180.62.221, 198.51.100.7".into(),
    ));
    let a = post(&proxied, &forged, ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.body.contains("198.51.100.7"), "{}", a.body);

    // Loopback allowed directly.
    let mut cfg = kafka.config(&prefix);
    cfg.access.allow = vec!["127.0.0.1/32".into()];
    let local = kafka.start_ready(cfg).await;
    let a = post(&local, &issue_headers(&unique("d-")), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for b in [strict, proxied, local] {
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_client_ip_header_is_believed() {
    let kafka = MockKafka::new();
    let prefix = unique("it-ipheader-");
    // Loopback plays the ingress.
    let config = |header: &str| {
        let mut cfg = kafka.config(&prefix);
        cfg.access.allow = vec!["popbill".into()];
        cfg.access.trusted_proxies = vec!["127.0.0.0/8".into()];
        cfg.access.client_ip_header = header.into();
        cfg
    };
    // The ingress wrote X-Forwarded-For; the client added `Forwarded`
    // and `X-Real-IP` claiming to be POPBiLL.
    let headers = |mid: &str| {
        let mut h = issue_headers(mid);
        h.push(("X-Forwarded-For".into(), "198.51.100.7".into()));
        h.push(("Forwarded".into(), "for=54.180.62.221".into()));
        h.push(("X-Real-IP".into(), "54.180.62.221".into()));
        h
    };
    let xff = kafka.start(config("x-forwarded-for")).await;
    let a = post(&xff, &headers(&unique("a-")), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.body.contains("198.51.100.7"), "{}", a.body);
    assert_eq!(rejections(&xff, "forbidden").await, 1.0);

    // An ingress that writes X-Real-IP instead: that header, and only it.
    let real_ip = kafka.start_ready(config("x-real-ip")).await;
    let a = post(&real_ip, &headers(&unique("b-")), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let mut no_real_ip = headers(&unique("c-"));
    no_real_ip.retain(|(k, _)| k != "X-Real-IP");
    let a = post(&real_ip, &no_real_ip, ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "no fallback: {}", a.body);
    assert!(a.body.contains("127.0.0.1"), "{}", a.body);
    for b in [xff, real_ip] {
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_off_the_allow_list_is_closed_at_accept_before_its_headers() {
    let kafka = MockKafka::new();
    let mut cfg = kafka.config(&unique("it-accept-"));
    // Loopback is neither allowed nor a trusted proxy: the verdict is
    // known from the TCP peer alone.
    cfg.access.allow = vec!["popbill".into()];
    cfg.limits.header_read_timeout = Duration::from_secs(20);
    let bridge = kafka.start(cfg).await;

    // A stranger connects and sends nothing, hoping to hold a slot for
    // header_read_timeout.
    let mut idle = tokio::net::TcpStream::connect(bridge.webhook_addr)
        .await
        .expect("connect");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(3), idle.read(&mut buf))
        .await
        .expect("closed at accept, not after header_read_timeout");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "nothing is answered: {read:?}"
    );
    assert_eq!(http_errors(&bridge, "forbidden_at_accept").await, 1.0);
    assert_eq!(
        scrape(&bridge, "popbill_bridge_open_connections", &[]).await,
        0.0
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sender_is_cut_off_without_holding_others_up() {
    let kafka = MockKafka::new();
    let mut cfg = kafka.config(&unique("it-slow-"));
    cfg.server.request_timeout = Duration::from_secs(2);
    cfg.kafka.message_timeout = Duration::from_millis(1250);
    let bridge = kafka.start_ready(cfg).await;

    // One byte a second of a 100-byte body.
    let mut slow = tokio::net::TcpStream::connect(bridge.webhook_addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /popbill/webhook HTTP/1.1\r\nHost: x\r\nPb-Webhook-Type: TAXINVOICE.STATE\r\nPb-Webhook-MID: {}\r\nContent-Length: 100\r\n\r\n",
        unique("slow-")
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    let t0 = Instant::now();
    let dripper = tokio::spawn(async move {
        let mut buf = vec![0u8; 1024];
        let mut got = Vec::new();
        for _ in 0..10 {
            if slow.write_all(b"{").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
    });

    // Meanwhile a normal delivery goes through at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t1 = Instant::now();
    let a = post(
        &bridge,
        &issue_headers(&unique("fast-")),
        ISSUE_BODY.to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        t1.elapsed() < Duration::from_secs(1),
        "held up: {:?}",
        t1.elapsed()
    );

    let (answer, took) = dripper.await.expect("dripper");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(took < Duration::from_secs(4), "cut off after {took:?}");
    assert_eq!(rejections(&bridge, "body_timeout").await, 1.0);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_inflight_cap_deliveries_get_503_and_beyond_max_connections_are_closed() {
    let kafka = MockKafka::new();
    let mut cfg = kafka.config(&unique("it-cap-"));
    cfg.limits.max_inflight = 1;
    cfg.limits.max_connections = 3;
    let bridge = kafka.start_ready(cfg).await;

    // Hold the one in-flight slot with a whole delivery that Kafka is slow
    // to confirm. (A body that never completes holds no slot: issue #23.)
    kafka
        .cluster
        .broker_round_trip_time(1, Duration::from_secs(3))
        .expect("rtt");
    let mut holder = tokio::net::TcpStream::connect(bridge.webhook_addr)
        .await
        .expect("connect");
    let body = String::from_utf8_lossy(ISSUE_BODY).into_owned();
    let held = format!(
        "POST /popbill/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Pb-Webhook-Type: TAXINVOICE.STATE\r\nPb-Webhook-MID: {}\r\n\
         Pb-Webhook-EventType: Issue\r\nContent-Length: {}\r\n\r\n{body}",
        unique("held-"),
        body.len()
    );
    holder.write_all(held.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let a = post(
        &bridge,
        &issue_headers(&unique("cap-")),
        ISSUE_BODY.to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));
    assert_eq!(rejections(&bridge, "overloaded").await, 1.0);

    // Connections: the holder plus two idle ones fill the three slots; the
    // fourth is closed at once.
    let _idle1 = tokio::net::TcpStream::connect(bridge.webhook_addr)
        .await
        .expect("connect");
    let _idle2 = tokio::net::TcpStream::connect(bridge.webhook_addr)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(bridge.webhook_addr)
        .await
        .expect("connect");
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), extra.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0, "the extra connection is closed without an answer");
    assert_eq!(
        scrape(&bridge, "popbill_bridge_connections_rejected_total", &[]).await,
        1.0
    );
    drop(holder);
    kafka
        .cluster
        .broker_round_trip_time(1, Duration::ZERO)
        .expect("rtt");
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_or_too_large_headers_and_broken_http_are_refused_and_counted() {
    let kafka = MockKafka::new();
    let mut cfg = kafka.config(&unique("it-hdr-"));
    cfg.limits.max_headers = 32;
    let bridge = kafka.start_ready(cfg).await;

    let many: Vec<(String, String)> = (0..100)
        .map(|i| (format!("X-Pad-{i}"), "x".into()))
        .collect();
    let (status, _) = raw_post(bridge.webhook_addr, &many, ISSUE_BODY.to_vec(), false).await;
    assert_eq!(status, 431);
    let big = vec![("X-Big".to_string(), "y".repeat(64 * 1024))];
    let (status, _) = raw_post(bridge.webhook_addr, &big, ISSUE_BODY.to_vec(), false).await;
    assert_eq!(status, 431);

    let mut s = tokio::net::TcpStream::connect(bridge.webhook_addr)
        .await
        .expect("connect");
    s.write_all(b"NOT HTTP AT ALL\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("answered")
        .unwrap_or(0);
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 400"));

    assert_eq!(http_errors(&bridge, "headers_too_large").await, 2.0);
    assert_eq!(http_errors(&bridge, "bad_request").await, 1.0);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_deliveries_with_the_configured_certificate() {
    let kafka = MockKafka::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    std::fs::write(dir.path().join("tls.crt"), &cert_pem).expect("write");
    std::fs::write(dir.path().join("tls.key"), &key_pem).expect("write");
    let mut cfg = kafka.config(&unique("it-tls-"));
    cfg.tls.cert_file = Some(dir.path().join("tls.crt"));
    cfg.tls.key_file = Some(dir.path().join("tls.key"));
    let bridge = kafka.start_ready(cfg).await;

    assert!(
        post_over_tls(bridge.webhook_addr, &cert).await,
        "a delivery over TLS is answered 200 OK"
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let (status, _) = raw_post(
        bridge.webhook_addr,
        &issue_headers("plain"),
        ISSUE_BODY.to_vec(),
        false,
    )
    .await;
    assert_eq!(status, 0);
    assert_eq!(
        scrape(&bridge, "popbill_bridge_tls_handshake_failures_total", &[]).await,
        1.0
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_picked_up_without_a_restart() {
    let kafka = MockKafka::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let old = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    std::fs::write(&crt, old.cert.pem()).expect("write");
    std::fs::write(&key, old.signing_key.serialize_pem()).expect("write");
    let mut cfg = kafka.config(&unique("it-tlsr-"));
    cfg.tls.cert_file = Some(crt.clone());
    cfg.tls.key_file = Some(key.clone());
    cfg.limits.reload_interval = Duration::from_millis(100);
    let bridge = kafka.start_ready(cfg).await;
    assert!(
        post_over_tls(bridge.webhook_addr, &old).await,
        "the first certificate serves"
    );

    // The renewal (as cert-manager rewrites a Secret): new key, new cert.
    let new = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    std::fs::write(&crt, new.cert.pem()).expect("write");
    std::fs::write(&key, new.signing_key.serialize_pem()).expect("write");
    bump_mtime(&crt, 5);
    bump_mtime(&key, 5);
    let until = Instant::now() + Duration::from_secs(10);
    while !post_over_tls(bridge.webhook_addr, &new).await {
        assert!(
            Instant::now() < until,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !post_over_tls(bridge.webhook_addr, &old).await,
        "the old certificate is gone"
    );

    // A broken renewal keeps the working certificate.
    std::fs::write(&crt, "not a certificate").expect("write");
    bump_mtime(&crt, 10);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        post_over_tls(bridge.webhook_addr, &new).await,
        "kept the last good certificate"
    );
    bridge.shutdown().await;
}

/// Issue #23: a key caught half-written was marked seen although it did
/// not load, so the complete key written next, with the same modification
/// time, was never picked up. A pair that fails to load is tried again,
/// and a change is told by content, not by modification time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_key_then_the_complete_key_with_the_same_mtime_is_picked_up() {
    let kafka = MockKafka::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let old = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    std::fs::write(&crt, old.cert.pem()).expect("write");
    std::fs::write(&key, old.signing_key.serialize_pem()).expect("write");
    let mut cfg = kafka.config(&unique("it-tlsh-"));
    cfg.tls.cert_file = Some(crt.clone());
    cfg.tls.key_file = Some(key.clone());
    cfg.limits.reload_interval = Duration::from_millis(100);
    let bridge = kafka.start_ready(cfg).await;
    assert!(post_over_tls(bridge.webhook_addr, &old).await);

    let same_time = std::time::SystemTime::now() + Duration::from_secs(60);
    let set_time = |f: &std::path::Path| {
        std::fs::File::options()
            .write(true)
            .open(f)
            .and_then(|file| file.set_modified(same_time))
            .expect("mtime");
    };
    let new = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let new_key = new.signing_key.serialize_pem();
    std::fs::write(&crt, new.cert.pem()).expect("write");
    std::fs::write(&key, &new_key[..new_key.len() / 2]).expect("write");
    set_time(&crt);
    set_time(&key);
    // Several reload rounds see the half-written key (and keep the old pair).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        post_over_tls(bridge.webhook_addr, &old).await,
        "the old pair is kept"
    );
    std::fs::write(&key, &new_key).expect("write");
    set_time(&key);
    let until = Instant::now() + Duration::from_secs(5);
    while !post_over_tls(bridge.webhook_addr, &new).await {
        assert!(
            Instant::now() < until,
            "the complete key was never picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bridge.shutdown().await;
}
