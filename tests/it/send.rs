//! `popbill-bridge send`: a sample delivery reaches Kafka through a bridge
//! (on librdkafka's mock cluster), TLS problems are named and `--ca-file`
//! fixes a private CA, a 200 with the wrong body is a failure that is
//! retried, refused connections and missing answers are named, and the
//! CLI lists its samples and explains its flags.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rdkafka::message::Message;

use popbill_bridge::RunningBridge;
use popbill_bridge::commands::samples;
use popbill_bridge::commands::send::{
    Delivery, Failure, Phase, RetryPolicy, Sender, SenderOptions, deliver, fresh_mid,
};

use crate::common::*;

fn sender(url: &str, timeout: Duration, ca_files: Vec<std::path::PathBuf>) -> Sender {
    Sender::new(url, SenderOptions { timeout, ca_files }).expect("sender")
}

fn issue() -> Delivery {
    let mut d = Delivery::from_sample(&samples::find("taxinvoice-issue").expect("sample"));
    d.set_header("Pb-Webhook-MID", &fresh_mid());
    d
}

/// A bridge on a mock cluster that holds its topics; TLS with `tls`.
async fn mock_bridge(
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> (MockKafka, RunningBridge, String) {
    let kafka = MockKafka::new();
    let prefix = unique("send-");
    let mut cfg = kafka.config(&prefix);
    cfg.dead_letter.enabled = false;
    if let Some((cert, key)) = tls {
        cfg.tls.cert_file = Some(cert);
        cfg.tls.key_file = Some(key);
    }
    let bridge = kafka.start_ready(cfg).await;
    (kafka, bridge, format!("{prefix}.taxinvoice.state.issue"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_reaches_kafka_through_a_bridge_on_the_mock_cluster() {
    let (kafka, bridge, topic) = mock_bridge(None).await;
    let url = format!("http://{}/popbill/webhook", bridge.webhook_addr);

    let delivery = issue();
    let mid = delivery.mid().expect("mid").to_string();
    let tries = deliver(
        &sender(&url, Duration::from_secs(10), vec![]),
        &delivery,
        RetryPolicy {
            retries: 2,
            interval: Duration::from_millis(50),
        },
        |_| {},
    )
    .await;
    assert_eq!(tries.len(), 1, "{:?}", tries);
    assert!(tries[0].succeeded(), "{:?}", tries[0]);

    // The command, as a user runs it.
    let out = bridge_command()
        .args([
            "send",
            "--url",
            &url,
            "--sample",
            "taxinvoice-issue",
            "--fresh-mid",
        ])
        .args(["--retries", "0"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("try 1/1") && text.contains("200 OK") && text.contains("-> OK"),
        "{text}"
    );
    assert!(text.contains("delivered"), "{text}");

    let records = read_back(
        &kafka.brokers(),
        &[topic],
        2,
        Duration::from_secs(20),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(records.len(), 2, "one record per send");
    let ce_ids: Vec<String> = records
        .iter()
        .filter_map(|m| record_header(m, "ce_id"))
        .collect();
    assert!(ce_ids.contains(&mid), "{ce_ids:?}");
    assert_ne!(ce_ids[0], ce_ids[1], "--fresh-mid makes a new event");
    let body = samples::find("taxinvoice-issue").expect("sample").body;
    assert!(
        records.iter().all(|m| m.payload() == Some(body.as_bytes())),
        "byte for byte"
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_problems_are_named_and_ca_file_trusts_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&crt, cert.cert.pem()).expect("write");
    std::fs::write(&key, cert.signing_key.serialize_pem()).expect("write");
    let (_kafka, bridge, _topic) = mock_bridge(Some((crt.clone(), key))).await;
    let port = bridge.webhook_addr.port();
    let by_name = format!("https://localhost:{port}/popbill/webhook");
    let by_ip = format!("https://127.0.0.1:{port}/popbill/webhook");
    let t = Duration::from_secs(10);

    let o = sender(&by_name, t, vec![]).try_once(&issue()).await;
    assert!(
        matches!(o.result, Err(Failure::CertificateNotTrusted(_))),
        "{:?}",
        o.result
    );
    let o = sender(&by_ip, t, vec![crt.clone()])
        .try_once(&issue())
        .await;
    assert!(
        matches!(o.result, Err(Failure::HostnameMismatch(_))),
        "{:?}",
        o.result
    );
    let o = sender(&by_name, t, vec![crt.clone()])
        .try_once(&issue())
        .await;
    assert!(o.succeeded(), "{:?}", o.result);
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = format!("http://127.0.0.1:{port}/popbill/webhook");
    let o = sender(&plain, t, vec![]).try_once(&issue()).await;
    assert!(o.result.is_err(), "{:?}", o.result);

    // The same from the command line, by name.
    let run = |extra: &[&str]| {
        bridge_command()
            .args(["send", "--url", &by_name, "--sample", "taxinvoice-issue"])
            .args(["--fresh-mid", "--retries", "0"])
            .args(extra)
            .output()
            .expect("runs")
    };
    let out = run(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("certificate not trusted") && text.contains("--ca-file"),
        "{text}"
    );
    let out = run(&["--ca-file", crt.to_str().expect("utf8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let out = bridge_command()
        .args([
            "send",
            "--url",
            &by_ip,
            "--sample",
            "taxinvoice-issue",
            "--retries",
            "0",
        ])
        .args(["--ca-file", crt.to_str().expect("utf8")])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("hostname mismatch"), "{text}");
    bridge.shutdown().await;
}

/// What a test server received.
#[derive(Debug, Clone)]
struct Received {
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// A plain HTTP server answering its n-th request with `answers[n]` (the
/// last one again after that), recording every request.
async fn scripted_server(
    answers: Vec<(u16, &'static str)>,
) -> (SocketAddr, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (log, answers) = (log.clone(), answers.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (log, answers) = (log.clone(), answers.clone());
                    async move {
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await?.to_bytes();
                        let n = {
                            let mut l = log.lock().expect("lock");
                            l.push(Received { headers, body });
                            l.len() - 1
                        };
                        let (status, text) = answers[n.min(answers.len() - 1)];
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from_static(text.as_bytes())))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_with_the_wrong_body_is_a_failure_and_is_retried() {
    let (addr, seen) = scripted_server(vec![(200, "ok")]).await;
    let url = format!("http://{addr}/hook");
    let policy = RetryPolicy {
        retries: 2,
        interval: Duration::from_millis(20),
    };
    let mut reports = Vec::new();
    let tries = deliver(
        &sender(&url, Duration::from_secs(5), vec![]),
        &issue(),
        policy,
        |r| reports.push((r.number, r.of, r.next_in, r.outcome.succeeded())),
    )
    .await;
    assert_eq!(tries.len(), 3);
    assert_eq!(
        seen.lock().expect("lock").len(),
        3,
        "3 sends: the first and 2 retries"
    );
    assert_eq!(
        reports,
        [
            (1, 3, Some(Duration::from_millis(20)), false),
            (2, 3, Some(Duration::from_millis(20)), false),
            (3, 3, None, false)
        ]
    );
    let a = tries[0].result.as_ref().expect("an answer");
    assert_eq!(a.status, 200);
    assert!(!a.accepted());
    assert!(
        a.problem()
            .expect("a problem")
            .contains("POPBiLL counts only OK")
    );
    // The same MID on every retry, as POPBiLL.
    let mids: Vec<_> = seen
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.headers["pb-webhook-mid"].clone())
        .collect();
    assert!(mids.windows(2).all(|w| w[0] == w[1]));

    // An empty 200 and a 202 "OK" fail too; {"result":"OK"} succeeds.
    for (answers, ok) in [
        (vec![(200, "")], false),
        (vec![(202, "OK")], false),
        (vec![(200, r#"{"result":"OK"}"#)], true),
    ] {
        let (addr, _) = scripted_server(answers.clone()).await;
        let o = sender(&format!("http://{addr}/"), Duration::from_secs(5), vec![])
            .try_once(&issue())
            .await;
        assert_eq!(o.succeeded(), ok, "{answers:?}: {:?}", o.result);
    }

    // A 503 and then OK: delivered on the second try, as the CLI says.
    let (addr, seen) = scripted_server(vec![(503, "kafka unavailable"), (200, "OK")]).await;
    let out = bridge_command()
        .args(["send", "--url", &format!("http://{addr}/popbill/webhook")])
        .args([
            "--sample",
            "statement-issue",
            "--retries",
            "3",
            "--retry-interval",
            "10ms",
        ])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("try 1/4") && text.contains("503"), "{text}");
    assert!(text.contains("next try in 10ms"), "{text}");
    assert!(text.contains("try 2/4") && text.contains("-> OK"), "{text}");
    assert!(!text.contains("try 3/4"), "{text}");
    assert_eq!(seen.lock().expect("lock").len(), 2);

    // Wrong body from the CLI: every try fails, exit status 1.
    let (addr, seen) = scripted_server(vec![(200, "OK\n")]).await;
    let out = bridge_command()
        .args(["send", "--url", &format!("http://{addr}/popbill/webhook")])
        .args([
            "--sample",
            "kakao-result",
            "--retries",
            "1",
            "--retry-interval",
            "10ms",
        ])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(r#"body "OK\n""#), "{text}");
    assert!(text.contains("not delivered"), "{text}");
    assert_eq!(seen.lock().expect("lock").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_carries_popbills_headers_and_the_given_credentials() {
    let (addr, seen) = scripted_server(vec![(200, "OK")]).await;
    let out = bridge_command()
        .args([
            "send",
            "--url",
            &format!("http://{addr}/popbill/webhook?x=1"),
        ])
        .args(["--sample", "cashbill-nts", "--basic", "popbill:s3cret"])
        .args([
            "--api-key",
            "k-1",
            "--mid",
            "my-mid",
            "-H",
            "Pb-Custom-Tenant: acme",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = seen.lock().expect("lock")[0].clone();
    let sample = samples::find("cashbill-nts").expect("sample");
    assert_eq!(r.body, sample.body.as_bytes(), "byte for byte");
    let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(h("pb-webhook-type"), "CASHBILL.STATE");
    assert_eq!(h("pb-webhook-eventtype"), "NTS");
    assert_eq!(h("pb-webhook-corpnum"), "6798700433");
    assert_eq!(h("pb-webhook-mid"), "my-mid");
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(h("authorization"), "Basic cG9wYmlsbDpzM2NyZXQ=");
    assert_eq!(h("x-api-key"), "k-1");
    assert_eq!(h("pb-custom-tenant"), "acme");
    assert_eq!(h("host"), addr.to_string());
    assert_eq!(h("content-length"), sample.body.len().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_and_missing_answers_are_named() {
    let closed = closed_port();
    let url = format!("http://127.0.0.1:{closed}/popbill/webhook");
    let o = sender(&url, Duration::from_secs(5), vec![])
        .try_once(&issue())
        .await;
    assert!(
        matches!(o.result, Err(Failure::ConnectionRefused(a)) if a.port() == closed),
        "{:?}",
        o.result
    );
    let out = bridge_command()
        .args(["send", "--url", &url, "--sample", "taxinvoice-issue"])
        .args(["--retries", "1", "--retry-interval", "10ms"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(text.matches("connection refused").count(), 2, "{text}");
    assert!(
        text.contains("POPBiLL delivers only to ports 80, 443, 9854"),
        "{text}"
    );

    // Accepts, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let o = sender(
        &format!("http://{addr}/"),
        Duration::from_millis(300),
        vec![],
    )
    .try_once(&issue())
    .await;
    assert_eq!(
        o.result.as_ref().err(),
        Some(&Failure::TimedOut(Phase::Answer))
    );
    assert!(o.elapsed < Duration::from_secs(2), "{:?}", o.elapsed);
    assert_eq!(
        Failure::TimedOut(Phase::Answer).to_string(),
        "timed out waiting for the answer"
    );
    // Over https, the handshake is what times out.
    let o = sender(
        &format!("https://{addr}/"),
        Duration::from_millis(300),
        vec![],
    )
    .try_once(&issue())
    .await;
    assert_eq!(
        o.result.as_ref().err(),
        Some(&Failure::TimedOut(Phase::TlsHandshake))
    );
    held.abort();
}

#[test]
fn list_shows_every_sample_and_help_every_flag() {
    let out = bridge_command()
        .args(["send", "--list"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for s in samples("deliveries.jsonl") {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{} ", s.name))),
            "--list lacks {}:\n{text}",
            s.name
        );
    }

    let out = bridge_command()
        .args(["send", "--help"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--url",
        "--sample",
        "--list",
        "--basic",
        "--api-key",
        "--retries",
        "--retry-interval",
        "--timeout",
        "--mid",
        "--fresh-mid",
        "--header",
        "--ca-file",
        "Exit status",
    ] {
        assert!(text.contains(flag), "send --help lacks {flag}:\n{text}");
    }

    let out = bridge_command().arg("--help").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("send") && text.contains("asyncapi"), "{text}");

    // Usage errors: exit status 2, with the problem named.
    let out = bridge_command()
        .args(["send", "--sample", "taxinvoice-issue"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
    let out = bridge_command()
        .args(["send", "--url", "http://127.0.0.1:9/", "--sample", "nope"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("taxinvoice-issue"));
    let out = bridge_command()
        .args([
            "send",
            "--url",
            "http://127.0.0.1:9/",
            "--sample",
            "kakao-result",
        ])
        .args(["--mid", "m", "--fresh-mid"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = bridge_command()
        .args(["--dev", "send", "--list"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "serving flags do not mix with commands"
    );
}
