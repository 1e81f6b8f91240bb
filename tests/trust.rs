//! Only POPBiLL gets in, nothing hostile gets through, every rejection is
//! clear — against the real broker: credentials (right, wrong, missing,
//! rotated), the source allow-list with and without a trusted proxy, slow
//! senders, load shedding, connection limits, the dead-letter topic, TLS.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rdkafka::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::*;

fn with_auth(
    headers: &[(String, String)],
    basic_b64: Option<&str>,
    key: Option<&str>,
) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("x-api-key")
        })
        .cloned()
        .collect();
    if let Some(b) = basic_b64 {
        h.push(("Authorization".into(), format!("Basic {b}")));
    }
    if let Some(k) = key {
        h.push(("X-Api-Key".into(), k.into()));
    }
    h
}

/// popbill:s3cret
const GOOD_BASIC: &str = "cG9wYmlsbDpzM2NyZXQ=";
/// wrong:wrong
const BAD_BASIC: &str = "d3Jvbmc6d3Jvbmc=";

async fn rejections(bridge: &popbill_bridge::RunningBridge, reason: &str) -> f64 {
    metric(
        &metrics_text(bridge).await,
        "popbill_bridge_rejections_total",
        &[("reason", reason)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_right_wrong_missing_and_rotated() {
    let brokers = bootstrap();
    let prefix = unique("it-auth-");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("api-keys");
    std::fs::write(&keys, "example-api-key\n").expect("write");
    let mut cfg = test_config(&brokers, &prefix);
    cfg.auth.basic = vec!["popbill:s3cret".into()];
    cfg.auth.api_key_files = vec![keys.clone()];
    cfg.limits.reload_interval = Duration::from_millis(100);
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

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
        let mut h = with_auth(&base, *b, *k);
        h.retain(|(k, _)| k != "Pb-Webhook-MID");
        h.push(("Pb-Webhook-MID".into(), unique("auth-")));
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
    let b = brokers.clone();
    let recs = tokio::task::spawn_blocking(move || {
        consume(
            &b,
            &[topic],
            3,
            Duration::from_secs(15),
            Duration::from_secs(2),
        )
    })
    .await
    .expect("consumer");
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

    // Item 7: the file emptied by mistake does not let everyone in; the
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
    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(&text, "popbill_bridge_auth_reload_failures_total", &[]),
        1.0
    );
    bridge.shutdown().await;
}

fn bump_mtime(path: &std::path::Path, secs: u64) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(secs))
        .expect("mtime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_believes_forwarded_headers_only_from_trusted_proxies() {
    let brokers = bootstrap();
    let prefix = unique("it-allow-");
    let from_popbill = |mid: &str| {
        let mut h = issue_headers(mid);
        h.push(("X-Forwarded-For".into(), "54.180.62.221".into()));
        h
    };

    // POPBiLL's preset only; loopback is no proxy of ours: a spoofed
    // X-Forwarded-For is never even read — the connection is closed at
    // accept (item 8).
    let mut cfg = test_config(&brokers, &prefix);
    cfg.access.allow = vec!["popbill".into()];
    let strict = start(cfg).await;
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
    let mut cfg = test_config(&brokers, &prefix);
    cfg.access.allow = vec!["popbill".into()];
    cfg.access.trusted_proxies = vec!["127.0.0.0/8".into()];
    let proxied = start(cfg).await;
    wait_ready(&proxied, Duration::from_secs(30)).await;
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
    let mut cfg = test_config(&brokers, &prefix);
    cfg.access.allow = vec!["127.0.0.1/32".into()];
    let local = start(cfg).await;
    wait_ready(&local, Duration::from_secs(30)).await;
    let a = post(&local, &issue_headers(&unique("d-")), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for b in [strict, proxied, local] {
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item6_only_the_configured_client_ip_header_is_believed() {
    let brokers = bootstrap();
    let prefix = unique("it-ipheader-");
    // Loopback plays the ingress.
    let config = |header: &str| {
        let mut cfg = test_config(&brokers, &prefix);
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
    let xff = start(config("x-forwarded-for")).await;
    let a = post(&xff, &headers(&unique("a-")), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.body.contains("198.51.100.7"), "{}", a.body);
    assert_eq!(rejections(&xff, "forbidden").await, 1.0);

    // An ingress that writes X-Real-IP instead: that header, and only it.
    let real_ip = start(config("x-real-ip")).await;
    wait_ready(&real_ip, Duration::from_secs(30)).await;
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

async fn http_errors(bridge: &popbill_bridge::RunningBridge, kind: &str) -> f64 {
    metric(
        &metrics_text(bridge).await,
        "popbill_bridge_http_errors_total",
        &[("kind", kind)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item8_a_source_off_the_allow_list_is_closed_at_accept_before_its_headers() {
    let brokers = bootstrap();
    let mut cfg = test_config(&brokers, &unique("it-accept-"));
    // Loopback is neither allowed nor a trusted proxy: the verdict is
    // known from the TCP peer alone.
    cfg.access.allow = vec!["popbill".into()];
    cfg.limits.header_read_timeout = Duration::from_secs(20);
    let bridge = start(cfg).await;

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
    let text = metrics_text(&bridge).await;
    assert_eq!(metric(&text, "popbill_bridge_open_connections", &[]), 0.0);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sender_is_cut_off_without_holding_others_up() {
    let brokers = bootstrap();
    let mut cfg = test_config(&brokers, &unique("it-slow-"));
    cfg.server.request_timeout = Duration::from_secs(2);
    cfg.kafka.message_timeout = Duration::from_millis(1500);
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

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
    let brokers = bootstrap();
    let mut cfg = test_config(&brokers, &unique("it-cap-"));
    cfg.limits.max_inflight = 1;
    cfg.limits.max_connections = 3;
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    // Hold the one in-flight slot with a body that never completes.
    let mut holder = tokio::net::TcpStream::connect(bridge.webhook_addr)
        .await
        .expect("connect");
    holder
        .write_all(b"POST /popbill/webhook HTTP/1.1\r\nHost: x\r\nPb-Webhook-Type: X\r\nContent-Length: 10\r\n\r\n{")
        .await
        .expect("write");
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
    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(&text, "popbill_bridge_connections_rejected_total", &[]),
        1.0
    );
    drop(holder);
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_deliveries_from_a_verified_sender_go_to_the_dead_letter_topic() {
    let brokers = bootstrap();
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
        let mut h = with_auth(&c.header_list(), None, Some("k"));
        h.retain(|(k, _)| !k.eq_ignore_ascii_case("Pb-Webhook-MID"));
        h.push(("Pb-Webhook-MID".into(), mid.clone()));
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

    let topic = format!("{prefix}.deadletter");
    let b = brokers.clone();
    let recs = tokio::task::spawn_blocking(move || {
        consume(
            &b,
            &[topic],
            3,
            Duration::from_secs(15),
            Duration::from_secs(2),
        )
    })
    .await
    .expect("consumer");
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
    let text = metrics_text(&bridge).await;
    assert_eq!(metric(&text, "popbill_bridge_dead_letters_total", &[]), 3.0);
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_rejections_total",
            &[("reason", "not_json")]
        ),
        2.0
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_deliveries_with_the_configured_certificate() {
    let brokers = bootstrap();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    std::fs::write(dir.path().join("tls.crt"), &cert_pem).expect("write");
    std::fs::write(dir.path().join("tls.key"), &key_pem).expect("write");
    let mut cfg = test_config(&brokers, &unique("it-tls-"));
    cfg.tls.cert_file = Some(dir.path().join("tls.crt"));
    cfg.tls.key_file = Some(dir.path().join("tls.key"));
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

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
    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(&text, "popbill_bridge_tls_handshake_failures_total", &[]),
        1.0
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_or_too_large_headers_and_broken_http_are_refused_and_counted() {
    let brokers = bootstrap();
    let mut cfg = test_config(&brokers, &unique("it-hdr-"));
    cfg.limits.max_headers = 32;
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

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

    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_http_errors_total",
            &[("kind", "headers_too_large")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "popbill_bridge_http_errors_total",
            &[("kind", "bad_request")]
        ),
        1.0
    );
    bridge.shutdown().await;
}

/// A TLS client that trusts only `cert`; returns whether a delivery over it
/// was answered 200 `OK`.
async fn post_over_tls(
    addr: std::net::SocketAddr,
    cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(cert.cert.der().clone()).is_err() {
        return false;
    }
    let client_cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let Ok(tls) = connector.connect(name, tcp).await else {
        return false;
    };
    let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await
    else {
        return false;
    };
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/popbill/webhook");
    for (k, v) in issue_headers(&unique("tlsr-")) {
        req = req.header(k, v);
    }
    let Ok(req) = req.body(Full::new(Bytes::from_static(ISSUE_BODY))) else {
        return false;
    };
    let Ok(resp) = send.send_request(req).await else {
        return false;
    };
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    status == StatusCode::OK && &body[..] == b"OK"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_picked_up_without_a_restart() {
    let brokers = bootstrap();
    let dir = tempfile::tempdir().expect("tempdir");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let old = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    std::fs::write(&crt, old.cert.pem()).expect("write");
    std::fs::write(&key, old.signing_key.serialize_pem()).expect("write");
    let mut cfg = test_config(&brokers, &unique("it-tlsr-"));
    cfg.tls.cert_file = Some(crt.clone());
    cfg.tls.key_file = Some(key.clone());
    cfg.limits.reload_interval = Duration::from_millis(100);
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
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
