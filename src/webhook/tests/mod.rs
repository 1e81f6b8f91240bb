//! The webhook's unit tests: one App on librdkafka's mock cluster per test,
//! HTTP/1 written by hand, and what the metrics and the topics then show.

use super::*;

use std::convert::Infallible;
use std::time::Duration;

use hyper::header::{ALLOW, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::http::OkBody;
use crate::kafka::client::ClientEvents;
use crate::kafka::publish::{create_producer, producer_config};
use crate::kafka::transactions::GroupCommit;

type Mock = MockCluster<'static, DefaultProducerContext>;

const PATH: &str = "/popbill/webhook";
const ISSUE_TOPIC: &str = "ut.taxinvoice.state.issue";
const DEAD_LETTER_TOPIC: &str = "ut.deadletter";
const ISSUE_BODY: &[u8] = br#"{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,"eventType":"Issue"}"#;
const API_KEY: &str = "k-123456";

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000))
}

/// A bridge's App on librdkafka's mock cluster: every topic its routes
/// name exists there but `absent`; `topics.create` is off (the mock
/// does not create topics through the admin API).
struct Fixture {
    // Declared first, dropped first: a Kafka client that outlives its
    // cluster takes a second to close.
    app: Arc<App>,
    /// The transactional writers, in a transactional fixture.
    writers: Option<Arc<GroupCommit>>,
    cluster: Mock,
}

fn fixture(tweak: impl FnOnce(&mut Config), absent: &[&str]) -> Fixture {
    build(tweak, absent, false)
}

/// A fixture whose deliveries go through the group commit (Kafka
/// transactions, no ledger lines), its writers ready.
async fn transactional_fixture(tweak: impl FnOnce(&mut Config)) -> Fixture {
    let f = build(tweak, &[], true);
    let until = Instant::now() + Duration::from_secs(10);
    while let Some(p) = f.writers.as_ref().and_then(|w| w.problem()) {
        assert!(Instant::now() < until, "writers never ready: {p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f
}

fn build(tweak: impl FnOnce(&mut Config), absent: &[&str], transactional: bool) -> Fixture {
    let cluster: Mock = MockCluster::new(1).expect("mock cluster");
    let mut cfg = Config::default();
    cfg.kafka.brokers = cluster.bootstrap_servers();
    cfg.kafka.message_timeout = Duration::from_millis(1250);
    cfg.kafka.admin_timeout = Duration::from_secs(1);
    cfg.kafka.statistics_interval = Duration::ZERO;
    cfg.server.request_timeout = Duration::from_secs(2);
    cfg.server.retry_after = Duration::from_secs(7);
    cfg.topics.create = false;
    cfg.topics.replication_factor = 1;
    cfg.topics.settings.clear();
    cfg.routes.template = "ut.{type}.{event}".into();
    cfg.routes.known = vec!["TAXINVOICE.STATE:Issue".into()];
    cfg.routes.fallback = "ut.unrouted".into();
    cfg.dead_letter.topic = DEAD_LETTER_TOPIC.into();
    cfg.dedup.ledger_topic = "ut.ledger".into();
    tweak(&mut cfg);
    // The parts as start-up builds them (bridge::Parts), each from its
    // own section.
    let router = Router::new(&cfg.routes, &cfg.dead_letter).expect("valid routes");
    let access = Access::new(&cfg.access).expect("valid access");
    let auth = Auth::new(cfg.auth.clone()).expect("valid auth");
    let metrics = Arc::new(Metrics::new(router.routes()));
    for r in router.routes() {
        if !absent.contains(&&*r.topic) {
            crate::kafka::mock::create_topic(&cluster, &r.topic, 1).expect("topic");
        }
    }
    let events = Arc::new(ClientEvents::default());
    let transactions = transactional.then(|| {
        GroupCommit::start(
            &cfg.kafka,
            producer_config(&cfg.kafka, cfg.max_record_bytes()),
            "ut-writer",
            None,
            metrics.clone(),
            events.clone(),
        )
        .expect("transactional writers")
    });
    let producer = create_producer(
        &cfg.kafka,
        cfg.max_record_bytes(),
        metrics.clone(),
        events.clone(),
    )
    .expect("producer");
    let topics = Topics::new(
        router.routes(),
        &cfg.kafka,
        cfg.topics.clone(),
        cfg.topic_needs(),
        None,
        producer.clone(),
        events,
    )
    .expect("topics");
    let app = Arc::new(App::new(
        &cfg,
        AppParts {
            access: Arc::new(access),
            auth: Arc::new(auth),
            router,
            topics: Arc::new(topics),
            publisher: Publisher::new(
                producer,
                transactions.clone(),
                cfg.cloudevents.clone(),
                metrics.clone(),
            ),
            dedup: Arc::new(Dedup::new(&cfg.dedup, metrics.clone())),
            metrics,
        },
    ));
    Fixture {
        app,
        writers: transactions,
        cluster,
    }
}

/// A bridge that checks senders: Basic credentials, or an API key, and
/// the allow-list behind a trusted proxy (127.0.0.1).
fn guarded(auth: &str) -> Fixture {
    let auth = auth.to_string();
    fixture(
        move |c| {
            match auth.as_str() {
                "basic" => c.auth.basic = vec!["popbill:secret".into()],
                _ => c.auth.api_keys = vec![API_KEY.into()],
            }
            c.access.allow = vec!["203.0.113.7".into()];
            c.access.trusted_proxies = vec!["127.0.0.1".into()];
            c.limits.max_inflight = 1;
        },
        &[],
    )
}

fn issue_headers(mid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".into()),
        ("Pb-Webhook-Type", "TAXINVOICE.STATE".into()),
        ("Pb-Webhook-MID", mid.into()),
        ("Pb-Webhook-Corpnum", "1234567890".into()),
        ("Pb-Webhook-EventType", "Issue".into()),
    ]
}

/// The bytes of a request; a Content-Length of the body unless the
/// headers give one (or chunked encoding).
fn request(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: bridge\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    let framed = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    if !framed {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn post(headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    request("POST", PATH, headers, body)
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

/// Serves one connection with `handle` (as `http::server` does) and
/// sends `raw` on it from `peer`; the client stays connected until the
/// answer is read, so a body left short is short, not cut off.
async fn exchange(app: &Arc<App>, peer: SocketAddr, raw: Vec<u8>) -> Reply {
    let (client, server) = tokio::io::duplex(4 << 20);
    let app = app.clone();
    let conn = tokio::spawn(async move {
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(app, peer, req).await) }
        });
        let _ = http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
    let (mut rd, mut wr) = tokio::io::split(client);
    let _ = wr.write_all(&raw).await;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let reply = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), rd.read(&mut chunk))
            .await
            .expect("an answer within 5s")
            .expect("read");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(reply) = parse(&buf) {
            break reply;
        }
        assert!(
            n > 0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
    };
    drop(wr);
    conn.abort();
    // The connection's hold on the App ends here, not at some later
    // poll: the App's Kafka clients must go before the cluster does.
    let _ = conn.await;
    reply
}

/// The whole answer in `buf`, once it is all there.
fn parse(buf: &[u8]) -> Option<Reply> {
    let text = std::str::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for l in lines {
        let (k, v) = l.split_once(':')?;
        headers.append(
            HeaderName::from_bytes(k.trim().as_bytes()).ok()?,
            HeaderValue::from_str(v.trim()).ok()?,
        );
    }
    let len: usize = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    (body.len() >= len).then(|| Reply {
        status,
        headers,
        body: body.to_string(),
    })
}

/// One sample of the app's metrics, e.g.
/// `popbill_bridge_rejections_total{reason="not_found"}` (0 if absent).
fn metric(app: &App, series: &str) -> f64 {
    let text = String::from_utf8(app.metrics.render()).expect("utf8");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn rejected(app: &App, reason: &str) -> f64 {
    metric(
        app,
        &format!(r#"popbill_bridge_rejections_total{{reason="{reason}"}}"#),
    )
}

fn deliveries(app: &App, outcome: &str) -> f64 {
    metric(
        app,
        &format!(
            r#"popbill_bridge_deliveries_total{{event_type="TAXINVOICE.STATE:Issue",outcome="{outcome}"}}"#
        ),
    )
}

/// Records in partition 0 of `topic` (each topic here has one).
async fn records_in(cluster: &Mock, topic: &str) -> i64 {
    let (brokers, topic) = (cluster.bootstrap_servers(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("consumer");
        let (low, high) = c
            .fetch_watermarks(&topic, 0, Duration::from_secs(2))
            .expect("watermarks");
        high - low
    })
    .await
    .expect("consumer thread")
}

/// The headers of the first record of `topic`.
/// The first record of `topic`'s partition 0.
async fn first_record(cluster: &Mock, topic: &str) -> rdkafka::message::OwnedMessage {
    let (brokers, topic) = (cluster.bootstrap_servers(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        crate::kafka::mock::reader(&brokers, "ut-reader", &topic)
            .poll(Duration::from_secs(3))
            .expect("a record within 3s")
            .expect("consume")
            .detach()
    })
    .await
    .expect("consumer thread")
}

async fn first_record_headers(cluster: &Mock, topic: &str) -> Vec<(String, String)> {
    first_record(cluster, topic)
        .await
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                    (h.key.to_string(), v.into_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn header(r: &Reply, name: hyper::header::HeaderName) -> Option<&str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

// --- the request-level checks, in their order --------------------------

// The tests, by the step of the data path they exercise.
mod body_and_capacity;
mod publishing;
mod request_checks;
