//! Shared test helpers: a bridge started in-process on loopback, an HTTP
//! client, a Kafka consumer that reads topics back from the beginning, the
//! sample deliveries, and a reader for the Prometheus text format.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

use popbill_bridge::RunningBridge;
use popbill_bridge::config::Config;

/// The broker the integration tests use: `KAFKA_BOOTSTRAP_SERVERS`, or the
/// one `scripts/kafka.sh start` runs.
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A configuration for one test: loopback listeners on free ports, topics
/// of its own under `prefix`, single-replica topics for the test broker.
pub fn test_config(brokers: &str, prefix: &str) -> Config {
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".parse().expect("addr");
    c.server.admin_listen = "127.0.0.1:0".parse().expect("addr");
    c.server.shutdown_delay = Duration::ZERO;
    c.server.shutdown_timeout = Duration::from_secs(5);
    c.kafka.brokers = brokers.to_string();
    c.kafka.health_interval = Duration::from_millis(500);
    c.kafka.statistics_interval = Duration::from_secs(1);
    c.topics.partitions = 3;
    c.topics.replication_factor = 1;
    c.topics.settings.clear();
    c.routes.template = format!("{prefix}.{{type}}.{{event}}");
    c.routes.fallback = format!("{prefix}.unrouted");
    c.dead_letter.topic = format!("{prefix}.deadletter");
    c.dedup.ledger_topic = format!("{prefix}.ledger");
    c.dedup.ledger_partitions = 2;
    c
}

pub async fn start(cfg: Config) -> RunningBridge {
    popbill_bridge::start(cfg).await.expect("bridge starts")
}

pub async fn wait_ready(bridge: &RunningBridge, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let (status, body) = get(bridge.admin_addr, "/readyz").await;
        if status == StatusCode::OK {
            return;
        }
        assert!(
            Instant::now() < until,
            "bridge not ready in {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let resp = client().request(req).await.expect("HTTP exchange");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn post(bridge: &RunningBridge, headers: &[(String, String)], body: Vec<u8>) -> Answer {
    request(
        bridge.webhook_addr,
        Method::POST,
        "/popbill/webhook",
        headers,
        body,
    )
    .await
}

pub async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let a = request(addr, Method::GET, path, &[], Vec::new()).await;
    (a.status, a.body)
}

/// One line of `deliveries.jsonl` or `bad-deliveries.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub name: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    #[serde(default)]
    pub expect: Option<String>,
}

impl Sample {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_list(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A body field as text (strings as they are, numbers printed).
    pub fn body_field(&self, field: &str) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        match v.get(field)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

pub fn samples(file: &str) -> Vec<Sample> {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}: {l}")))
        .collect()
}

/// Reads every record of `topics` from the beginning until `expected`
/// records arrived and then `settle` passed with no more, or `within`
/// elapsed. Returns what it read; the caller asserts the count.
pub fn consume(
    brokers: &str,
    topics: &[String],
    expected: usize,
    within: Duration,
    settle: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("it-reader-"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let md = consumer
            .fetch_metadata(Some(t), Duration::from_secs(10))
            .expect("metadata");
        let Some(topic) = md.topics().iter().find(|x| x.name() == t) else {
            continue;
        };
        for p in topic.partitions() {
            tpl.add_partition_offset(t, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let until = Instant::now() + within;
    let mut last = Instant::now();
    while Instant::now() < until {
        if out.len() >= expected && last.elapsed() >= settle {
            break;
        }
        if let Some(r) = consumer.poll(Duration::from_millis(100)) {
            let m = r.expect("consume");
            out.push(m.detach());
            last = Instant::now();
        }
    }
    out
}

/// Partitions of `topic` per the broker's metadata (0: no such topic).
pub fn partitions_of(brokers: &str, topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("client");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .unwrap_or(0)
}

pub fn topic_exists(brokers: &str, topic: &str) -> bool {
    partitions_of(brokers, topic) > 0
}

/// The record's headers as (name, value) pairs, in order.
pub fn record_headers(m: &OwnedMessage) -> Vec<(String, Vec<u8>)> {
    m.headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn record_header(m: &OwnedMessage, name: &str) -> Option<String> {
    record_headers(m)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

/// Sum of every sample of `name` whose labels include all of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            if all { value.parse::<f64>().ok() } else { None }
        })
        .sum()
}

pub async fn metrics_text(bridge: &RunningBridge) -> String {
    get(bridge.admin_addr, "/metrics").await.1
}

/// `popbill_bridge_deliveries_total{outcome}`, summed over event types.
pub async fn deliveries(bridge: &RunningBridge, outcome: &str) -> f64 {
    metric(
        &metrics_text(bridge).await,
        "popbill_bridge_deliveries_total",
        &[("outcome", outcome)],
    )
}

/// A POST written by hand over TCP, reading the answer while the body is
/// still being sent — as curl does, and as a server that refuses a body
/// early needs. `chunked` sends the body without a Content-Length.
pub async fn raw_post(
    addr: SocketAddr,
    headers: &[(String, String)],
    body: Vec<u8>,
    chunked: bool,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!("POST /popbill/webhook HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    }
    let writer = tokio::spawn(async move {
        // Errors are expected once the server refuses the body.
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for part in body.chunks(64 * 1024) {
            let ok = if chunked {
                let mut c = format!("{:x}\r\n", part.len()).into_bytes();
                c.extend_from_slice(part);
                c.extend_from_slice(b"\r\n");
                wr.write_all(&c).await
            } else {
                wr.write_all(part).await
            };
            if ok.is_err() {
                return;
            }
        }
        if chunked {
            let _ = wr.write_all(b"0\r\n\r\n").await;
        }
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The bridge binary as a separate process, for tests that kill it.
pub struct BridgeProcess {
    pub child: std::process::Child,
    pub webhook: SocketAddr,
    pub admin: SocketAddr,
}

impl BridgeProcess {
    /// Starts the binary against `brokers` with the same topics and ledger
    /// as `test_config(brokers, prefix)`, and waits until it is ready.
    pub async fn start(brokers: &str, prefix: &str) -> BridgeProcess {
        Self::start_with(brokers, prefix, &[]).await
    }

    /// As `start`, with extra `POPBILL_BRIDGE_*` settings.
    pub async fn start_with(brokers: &str, prefix: &str, env: &[(&str, &str)]) -> BridgeProcess {
        let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let webhook = a.local_addr().expect("addr");
        let admin = b.local_addr().expect("addr");
        drop((a, b));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_popbill-bridge"));
        for (k, _) in std::env::vars() {
            if k.starts_with("POPBILL_BRIDGE") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args([
                "--brokers",
                brokers,
                "--listen",
                &webhook.to_string(),
                "--admin-listen",
                &admin.to_string(),
            ])
            .env("POPBILL_BRIDGE_TOPICS__PARTITIONS", "3")
            .env("POPBILL_BRIDGE_TOPICS__REPLICATION_FACTOR", "1")
            .env("POPBILL_BRIDGE_TOPICS__SETTINGS__MIN_INSYNC_REPLICAS", "1")
            .env(
                "POPBILL_BRIDGE_ROUTES__TEMPLATE",
                format!("{prefix}.{{type}}.{{event}}"),
            )
            .env(
                "POPBILL_BRIDGE_ROUTES__FALLBACK",
                format!("{prefix}.unrouted"),
            )
            .env(
                "POPBILL_BRIDGE_DEAD_LETTER__TOPIC",
                format!("{prefix}.deadletter"),
            )
            .env(
                "POPBILL_BRIDGE_DEDUP__LEDGER_TOPIC",
                format!("{prefix}.ledger"),
            )
            .env("POPBILL_BRIDGE_DEDUP__LEDGER_PARTITIONS", "2")
            .env("POPBILL_BRIDGE_KAFKA__HEALTH_INTERVAL", "500ms")
            .env("POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY", "0s")
            .env("POPBILL_BRIDGE_LOG__LEVEL", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn bridge");
        let p = BridgeProcess {
            child,
            webhook,
            admin,
        };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(admin).await.is_ok()
                && get(admin, "/readyz").await.0 == StatusCode::OK
            {
                return p;
            }
            assert!(Instant::now() < until, "bridge process not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit, at most `within`.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(within)
    }

    /// Waits for the process to exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Headers of a tax-invoice Issue delivery with the given MID.
pub fn issue_headers(mid: &str) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("Pb-Webhook-Type".into(), "TAXINVOICE.STATE".into()),
        ("Pb-Webhook-MID".into(), mid.into()),
        ("Pb-Webhook-Corpnum".into(), "1234567890".into()),
        ("Pb-Webhook-EventType".into(), "Issue".into()),
    ]
}

pub const ISSUE_BODY: &[u8] = br#"{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,"stateDT":"20251114093010","eventDT":"20251114093011","eventType":"Issue"}"#;

/// Records of `topic` whose `ce_id` is `id`, read from the beginning.
pub async fn records_with_id(brokers: &str, topic: &str, id: &str, expected: usize) -> usize {
    let (b, t, id) = (brokers.to_string(), vec![topic.to_string()], id.to_string());
    tokio::task::spawn_blocking(move || {
        consume(
            &b,
            &t,
            expected,
            Duration::from_secs(15),
            Duration::from_secs(2),
        )
        .iter()
        .filter(|m| record_header(m, "ce_id").as_deref() == Some(id.as_str()))
        .count()
    })
    .await
    .expect("consumer thread")
}
