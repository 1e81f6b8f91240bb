//! A real Prometheus server (Debian's `prometheus` package) scrapes the
//! running bridge on loopback; its HTTP API must report the delivery
//! counters the test caused. `scripts/test.sh` installs Prometheus when it
//! is missing; set PROMETHEUS_BIN to use another binary.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::common::*;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_bin() -> String {
    std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into())
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of a PromQL query that returns one sample, if any.
async fn query(prom: std::net::SocketAddr, q: &str) -> Option<f64> {
    let (status, body) = get(prom, &format!("/api/v1/query?query={}", encode(q))).await;
    if status != StatusCode::OK {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_real_prometheus_scrapes_the_counters_the_test_caused() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let version = Command::new(prometheus_bin()).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "the prometheus binary is needed (apt-get install prometheus, or run scripts/test.sh, which installs it)"
    );

    let bridge = start(test_config(&brokers, &unique("it-prom-"))).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let prom: std::net::SocketAddr = format!("127.0.0.1:{}", closed_port())
        .parse()
        .expect("addr");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: popbill-bridge\n    static_configs:\n      - targets: ['{}']\n",
            bridge.admin_addr
        ),
    )
    .expect("config");
    let _server = Server(
        Command::new(prometheus_bin())
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    // Seven deliveries, two copies of one of them, one refused.
    let samples = samples("deliveries.jsonl");
    for s in samples.iter().take(7) {
        let a = post(&bridge, &s.header_list(), s.body.clone().into_bytes()).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    for _ in 0..2 {
        let s = &samples[0];
        assert_eq!(
            post(&bridge, &s.header_list(), s.body.clone().into_bytes())
                .await
                .status,
            StatusCode::OK
        );
    }
    assert_eq!(
        post(&bridge, &issue_headers("x"), b"[1]".to_vec())
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let expect = [
        ("acknowledged", 7.0),
        ("duplicate", 2.0),
        ("rejected", 1.0),
        ("failed", 0.0),
    ];
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let mut got = Vec::new();
        for (outcome, _) in expect {
            let q = format!(
                r#"sum(popbill_bridge_deliveries_total{{job="popbill-bridge",outcome="{outcome}"}})"#
            );
            got.push(query(prom, &q).await);
        }
        let up = query(prom, r#"up{job="popbill-bridge"}"#).await;
        if up == Some(1.0)
            && got
                .iter()
                .zip(expect)
                .all(|(g, (_, want))| *g == Some(want))
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "Prometheus never saw the expected counters: up={up:?} got={got:?} want={expect:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The histogram made it through too.
    let n = query(
        prom,
        r#"sum(popbill_bridge_publish_duration_seconds_count{job="popbill-bridge"})"#,
    )
    .await;
    assert_eq!(n, Some(7.0));
    bridge.shutdown().await;
}
