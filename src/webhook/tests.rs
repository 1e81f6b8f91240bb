use super::*;

use std::convert::Infallible;
use std::time::Duration;

use hyper::header::{ALLOW, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bridge::Parts;
use crate::config::Config;
use crate::http::OkBody;
use crate::kafka::client::ClientEvents;
use crate::kafka::publish::create_producer;

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
    cluster: Mock,
}

fn fixture(tweak: impl FnOnce(&mut Config), absent: &[&str]) -> Fixture {
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
    let parts = Parts::build(&cfg).expect("valid configuration");
    for r in parts.router.routes() {
        if !absent.contains(&&*r.topic) {
            crate::kafka::mock::create_topic(&cluster, &r.topic, 1).expect("topic");
        }
    }
    let metrics = parts.metrics;
    let events = Arc::new(ClientEvents::default());
    let producer = create_producer(
        &cfg.kafka,
        cfg.max_record_bytes(),
        metrics.clone(),
        events.clone(),
    )
    .expect("producer");
    let topics = Topics::new(
        parts.router.routes(),
        &cfg.kafka,
        cfg.topics.clone(),
        cfg.topic_needs(),
        None,
        producer.clone(),
        events,
    )
    .expect("topics");
    let app = Arc::new(App {
        server: cfg.server.clone(),
        access: Arc::new(parts.access),
        auth: Arc::new(parts.auth),
        capacity: cfg.limits.capacity(),
        router: parts.router,
        topics: Arc::new(topics),
        publisher: Publisher::new(producer, None, cfg.cloudevents.clone(), metrics.clone()),
        dedup: Arc::new(Dedup::new(&cfg.dedup, metrics.clone())),
        metrics,
    });
    Fixture { app, cluster }
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
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "ut-reader")
            .set("fetch.wait.max.ms", "10")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(0))
            .expect("partition");
        c.assign(&tpl).expect("assign");
        c.poll(Duration::from_secs(3))
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

#[tokio::test]
async fn a_wrong_path_is_404_before_any_other_check() {
    let f = guarded("basic");
    // Wrong method too, no credentials, a stranger, no capacity left.
    let _all_taken = f.app.capacity.try_slot().expect("slot");
    for method in ["GET", "POST"] {
        let r = exchange(
            &f.app,
            peer(),
            request(
                method,
                "/popbill/webhook/x",
                &[("X-Forwarded-For", "198.51.100.9".into())],
                b"",
            ),
        )
        .await;
        assert_eq!(r.status, 404, "{method}: {r:?}");
    }
    assert_eq!(rejected(&f.app, "not_found"), 2.0);
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_post_before_the_source_is_checked() {
    let f = guarded("basic");
    let r = exchange(
        &f.app,
        peer(),
        request(
            "GET",
            PATH,
            &[("X-Forwarded-For", "198.51.100.9".into())],
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(header(&r, ALLOW), Some("POST"));
    assert_eq!(rejected(&f.app, "method_not_allowed"), 1.0);
}

#[tokio::test]
async fn a_forwarded_client_off_the_allow_list_is_403_before_credentials_are_checked() {
    let f = guarded("basic");
    let r = exchange(
        &f.app,
        peer(),
        post(&[("X-Forwarded-For", "198.51.100.9".into())], ISSUE_BODY),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("198.51.100.9"), "{r:?}");
    assert!(header(&r, WWW_AUTHENTICATE).is_none());
    assert_eq!(rejected(&f.app, "forbidden"), 1.0);
    assert_eq!(rejected(&f.app, "unauthorized"), 0.0);
}

#[tokio::test]
async fn missing_basic_credentials_are_401_with_www_authenticate_before_capacity_is_asked() {
    let f = guarded("basic");
    let _all_taken = f.app.capacity.try_slot().expect("slot");
    let r = exchange(
        &f.app,
        peer(),
        post(&[("X-Forwarded-For", "203.0.113.7".into())], ISSUE_BODY),
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    let challenge = header(&r, WWW_AUTHENTICATE).expect("WWW-Authenticate");
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    assert_eq!(rejected(&f.app, "unauthorized"), 1.0);
    assert_eq!(rejected(&f.app, "overloaded"), 0.0);
}

#[tokio::test]
async fn a_wrong_api_key_is_401_without_www_authenticate() {
    let f = guarded("api_key");
    let r = exchange(
        &f.app,
        peer(),
        post(
            &[
                ("X-Forwarded-For", "203.0.113.7".into()),
                ("X-Api-Key", "wrong".into()),
            ],
            ISSUE_BODY,
        ),
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(header(&r, WWW_AUTHENTICATE).is_none(), "{r:?}");
}

#[tokio::test]
async fn with_every_slot_taken_a_delivery_is_read_then_shed_503_overloaded() {
    let f = guarded("api_key");
    let held = f.app.capacity.try_slot().expect("slot");
    let known = [
        ("X-Forwarded-For", "203.0.113.7".to_string()),
        ("X-Api-Key", API_KEY.to_string()),
    ];
    let mut headers = issue_headers("mid-shed");
    headers.extend(known.iter().cloned());
    let r = exchange(&f.app, peer(), post(&headers, ISSUE_BODY)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(header(&r, RETRY_AFTER), Some("7"));
    assert!(r.body.contains("too many deliveries"), "{r:?}");
    assert_eq!(rejected(&f.app, "overloaded"), 1.0);

    // The body is checked before a slot is asked for: too large is 413.
    let mut big = known.to_vec();
    big.push(("Content-Length", "100000000".to_string()));
    let r = exchange(&f.app, peer(), post(&big, b"")).await;
    assert_eq!(r.status, 413, "{r:?}");

    // The slot back, the same sender gets through the checks.
    drop(held);
    let r = exchange(&f.app, peer(), post(&headers, ISSUE_BODY)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
}

/// Issue #23: the slot used to be taken before the body was read, so
/// senders trickling their bodies held every slot until the body
/// timeout and a genuine delivery was shed. Now a slot is taken only
/// once the whole body is in.
#[tokio::test]
async fn a_sender_slow_to_send_its_body_holds_no_slot() {
    let f = fixture(|c| c.limits.max_inflight = 2, &[]);
    // Two senders (as many as there are slots) announce 4000 bytes and
    // send 10: they wait for the rest until the deadline.
    let mut slow = Vec::new();
    for i in 0..2 {
        let mut headers = issue_headers(&format!("mid-slow-{i}"));
        headers.push(("Content-Length", "4000".into()));
        let app = f.app.clone();
        slow.push(tokio::spawn(async move {
            exchange(&app, peer(), post(&headers, b"{\"corpNum\"")).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    let r = exchange(
        &f.app,
        peer(),
        post(&issue_headers("mid-genuine"), ISSUE_BODY),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "no wait for a slot: {:?}",
        started.elapsed()
    );
    assert_eq!(rejected(&f.app, "overloaded"), 0.0);
    assert_eq!(
        metric(&f.app, "popbill_bridge_inflight_slot_waits_total"),
        0.0
    );
    for s in slow {
        assert_eq!(s.await.expect("slow sender").status, 408);
    }
}

/// Issue #23: what bodies hold is bounded by
/// `limits.max_body_buffer_bytes`, counted by what has arrived: senders
/// that sent much and stall take the room; a body that finds none
/// within `inflight_wait` is shed 503 `overloaded`, and gets through
/// once the room is back.
#[tokio::test]
async fn bodies_held_at_once_are_bounded_by_max_body_buffer_bytes() {
    let f = fixture(
        |c| {
            c.server.max_body_bytes = 1024;
            c.limits.max_body_buffer_bytes = 2048;
            c.limits.inflight_wait = Duration::from_millis(200);
        },
        &[],
    );
    let mut stalled = Vec::new();
    for i in 0..2 {
        let mut headers = issue_headers(&format!("mid-stall-{i}"));
        headers.push(("Content-Length", "1024".into()));
        let app = f.app.clone();
        stalled.push(tokio::spawn(async move {
            exchange(&app, peer(), post(&headers, &[b' '; 1000])).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(metric(&f.app, "popbill_bridge_body_buffer_bytes"), 2000.0);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-shed"), ISSUE_BODY)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("too many deliveries"), "{r:?}");
    assert_eq!(rejected(&f.app, "overloaded"), 1.0);
    for s in stalled {
        assert_eq!(s.await.expect("stalled sender").status, 408);
    }
    assert_eq!(metric(&f.app, "popbill_bridge_body_buffer_bytes"), 0.0);
    let r = exchange(
        &f.app,
        peer(),
        post(&issue_headers("mid-later"), ISSUE_BODY),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
}

#[tokio::test]
async fn a_delivery_that_finds_every_slot_taken_waits_for_one_freed_within_inflight_wait() {
    let f = guarded("api_key");
    let held = f.app.capacity.try_slot().expect("slot");
    let mut headers = issue_headers("mid-waits");
    headers.push(("X-Forwarded-For", "203.0.113.7".to_string()));
    headers.push(("X-Api-Key", API_KEY.to_string()));
    let app = f.app.clone();
    let delivery =
        tokio::spawn(async move { exchange(&app, peer(), post(&headers, ISSUE_BODY)).await });
    // A momentary stall: the slot frees up well within the default
    // inflight_wait (500ms).
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(held);
    let r = delivery.await.expect("delivery");
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(rejected(&f.app, "overloaded"), 0.0);
    assert_eq!(
        metric(&f.app, "popbill_bridge_inflight_slot_waits_total"),
        1.0
    );
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_413_before_a_byte_of_body_is_read() {
    let f = fixture(|c| c.server.max_body_bytes = 1024, &[]);
    let started = tokio::time::Instant::now();
    let mut headers = issue_headers("mid-1");
    headers.push(("Content-Length", "1025".into()));
    // Not a byte of the body is sent: reading it would wait for the
    // deadline (408), not answer 413.
    let r = exchange(&f.app, peer(), post(&headers, b"")).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.body.contains("1024"), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(rejected(&f.app, "body_too_large"), 1.0);
}

#[tokio::test]
async fn a_chunked_body_growing_past_the_limit_is_413_while_being_read() {
    let f = fixture(|c| c.server.max_body_bytes = 1024, &[]);
    let mut headers = issue_headers("mid-1");
    headers.push(("Transfer-Encoding", "chunked".into()));
    let mut body = Vec::new();
    for _ in 0..3 {
        body.extend_from_slice(format!("{:x}\r\n", 600).as_bytes());
        body.extend_from_slice(&[b' '; 600]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let r = exchange(&f.app, peer(), post(&headers, &body)).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(rejected(&f.app, "body_too_large"), 1.0);
}

/// A body that arrives in several pieces is published whole, byte for
/// byte, and the room it took is given back.
#[tokio::test]
async fn a_body_in_several_chunks_is_published_whole_and_its_room_given_back() {
    let f = fixture(|_| {}, &[]);
    let mut headers = issue_headers("mid-chunked");
    headers.push(("Transfer-Encoding", "chunked".into()));
    let mut body = Vec::new();
    for piece in ISSUE_BODY.chunks(30) {
        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let r = exchange(&f.app, peer(), post(&headers, &body)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    let record = first_record(&f.cluster, ISSUE_TOPIC).await;
    assert_eq!(record.payload(), Some(ISSUE_BODY));
    assert_eq!(f.app.capacity.body_bytes_held(), 0);
    assert_eq!(metric(&f.app, "popbill_bridge_body_buffer_bytes"), 0.0);
}

#[tokio::test]
async fn a_body_still_incomplete_at_the_deadline_is_408_body_timeout() {
    let f = fixture(
        |c| {
            c.server.request_timeout = Duration::from_millis(500);
            c.kafka.message_timeout = Duration::from_millis(250);
            c.limits.inflight_wait = Duration::ZERO;
        },
        &[],
    );
    let mut headers = issue_headers("mid-1");
    headers.push(("Content-Length", "100".into()));
    let started = tokio::time::Instant::now();
    let r = exchange(&f.app, peer(), post(&headers, b"{\"corpNum\"")).await;
    let took = started.elapsed();
    assert_eq!(r.status, 408, "{r:?}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(rejected(&f.app, "body_timeout"), 1.0);
}

// --- published, duplicate, failed: `finish` --------------------------

#[tokio::test]
async fn a_valid_delivery_is_answered_ok_once_kafka_confirmed_it() {
    let f = fixture(|_| {}, &[]);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(header(&r, CONTENT_TYPE), Some(crate::http::answer::PLAIN));
    assert_eq!(deliveries(&f.app, "acknowledged"), 1.0);
    assert_eq!(records_in(&f.cluster, ISSUE_TOPIC).await, 1);
}

#[tokio::test]
async fn with_ok_body_json_a_published_delivery_and_its_copy_are_answered_result_ok() {
    let f = fixture(|c| c.server.ok_body = OkBody::Json, &[]);
    for outcome in ["acknowledged", "duplicate"] {
        let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, r#"{"result":"OK"}"#),
            "{outcome}: {r:?}"
        );
        assert_eq!(header(&r, CONTENT_TYPE), Some("application/json"));
        assert_eq!(deliveries(&f.app, outcome), 1.0);
    }
}

#[tokio::test]
async fn a_copy_of_a_published_event_is_answered_ok_without_a_second_record() {
    let f = fixture(|_| {}, &[]);
    for _ in 0..2 {
        let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
        assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    }
    assert_eq!(deliveries(&f.app, "acknowledged"), 1.0);
    assert_eq!(deliveries(&f.app, "duplicate"), 1.0);
    assert_eq!(records_in(&f.cluster, ISSUE_TOPIC).await, 1);
}

#[tokio::test]
async fn a_copy_arriving_while_the_first_is_in_flight_waits_and_shares_its_ok() {
    let f = fixture(|_| {}, &[]);
    f.cluster
        .broker_round_trip_time(1, Duration::from_millis(100))
        .expect("rtt");
    let (a, b) = tokio::join!(
        exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)),
        exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)),
    );
    assert_eq!((a.status, a.body.as_str()), (200, "OK"), "{a:?}");
    assert_eq!((b.status, b.body.as_str()), (200, "OK"), "{b:?}");
    assert_eq!(deliveries(&f.app, "acknowledged"), 1.0);
    assert_eq!(deliveries(&f.app, "duplicate"), 1.0);
    f.cluster
        .broker_round_trip_time(1, Duration::ZERO)
        .expect("rtt");
    assert_eq!(records_in(&f.cluster, ISSUE_TOPIC).await, 1);
}

#[tokio::test]
async fn a_delivery_kafka_cannot_take_is_503_with_retry_after() {
    let f = fixture(|_| {}, &[ISSUE_TOPIC]);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(header(&r, RETRY_AFTER), Some("7"));
    assert!(r.body.contains(ISSUE_TOPIC), "{r:?}");
    assert_eq!(deliveries(&f.app, "failed"), 1.0);
    assert_eq!(deliveries(&f.app, "acknowledged"), 0.0);
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_publish_failures_total{reason="topic_missing"}"#
        ),
        1.0
    );
    // A failed attempt is not remembered: the retry publishes.
    f.cluster.create_topic(ISSUE_TOPIC, 1, 1).expect("topic");
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), ISSUE_BODY)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(deliveries(&f.app, "duplicate"), 0.0);
}

#[tokio::test]
async fn a_write_kafka_does_not_confirm_by_the_deadline_is_503_timeout() {
    let f = fixture(
        |c| {
            c.server.request_timeout = Duration::from_millis(600);
            c.kafka.message_timeout = Duration::from_millis(300);
            c.limits.inflight_wait = Duration::ZERO;
            c.kafka.admin_timeout = Duration::from_secs(2);
        },
        &[],
    );
    // The topic is known first; then Kafka turns slow.
    let route = f.app.router.route("TAXINVOICE.STATE", Some("Issue"));
    f.app
        .topics
        .ensure(route, Instant::now() + Duration::from_secs(2))
        .await
        .expect("the topic exists");
    f.cluster
        .broker_round_trip_time(1, Duration::from_secs(1))
        .expect("rtt");
    let started = tokio::time::Instant::now();
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-2"), ISSUE_BODY)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(header(&r, RETRY_AFTER), Some("7"));
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_publish_failures_total{reason="timeout"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn finish_answers_each_ending_and_counts_it_once() {
    let f = fixture(|_| {}, &[]);
    let app = &f.app;
    let mut headers = HeaderMap::new();
    for (k, v) in issue_headers("mid-1") {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(&v).expect("value"),
        );
    }
    let d = Delivery::parse(&headers, ISSUE_BODY).expect("valid");
    let route = app.router.route("TAXINVOICE.STATE", Some("Issue"));
    let receipt = Receipt::from_report(0, 9).expect("a real offset");
    let latency = Duration::from_millis(3);
    let body = |r: Response<Body>| async move {
        let b = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(b.to_vec()).expect("utf8")
    };

    let published = End::Published {
        receipt,
        dead_letter: None,
    };
    let r = finish(app, published, route, &d, "mid-1", latency);
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await, "OK");
    for waited in [false, true] {
        let r = finish(app, End::Duplicate { waited }, route, &d, "mid-1", latency);
        assert_eq!(r.status(), 200);
        assert_eq!(body(r).await, "OK");
    }
    let failed = End::Failed(Arc::new(BridgeError::QueueFull));
    let r = finish(app, failed, route, &d, "mid-1", latency);
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()[RETRY_AFTER], "7");
    assert_eq!(body(r).await, "producer queue is full\n");

    assert_eq!(deliveries(app, "acknowledged"), 1.0);
    assert_eq!(deliveries(app, "duplicate"), 2.0);
    assert_eq!(deliveries(app, "failed"), 1.0);
    assert_eq!(
        metric(
            app,
            r#"popbill_bridge_publish_failures_total{reason="queue_full"}"#
        ),
        1.0
    );

    // A dead letter is counted as written only once Kafka confirmed it.
    let dl = app.router.dead_letter().expect("dead letters on");
    let raw = Delivery::raw(&headers, b"x");
    let series = r#"popbill_bridge_dead_letters_total{reason="not_json"}"#;
    let failed = End::Failed(Arc::new(BridgeError::PublishTimeout));
    assert_eq!(
        finish(app, failed, dl, &raw, "mid-1", latency).status(),
        503
    );
    assert_eq!(metric(app, series), 0.0);
    let published = End::Published {
        receipt,
        dead_letter: Some(RejectReason::NotJson),
    };
    assert_eq!(
        finish(app, published, dl, &raw, "mid-1", latency).status(),
        200
    );
    assert_eq!(metric(app, series), 1.0);
}

// --- dead letters: only from senders we know ----------------------------

#[tokio::test]
async fn a_malformed_body_from_a_verified_sender_is_dead_lettered_with_its_reason() {
    let f = fixture(|c| c.auth.api_keys = vec![API_KEY.into()], &[]);
    let mut headers = issue_headers("mid-1");
    headers.push(("X-Api-Key", API_KEY.into()));
    let r = exchange(&f.app, peer(), post(&headers, b"not json")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(rejected(&f.app, "not_json"), 1.0);
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_dead_letters_total{reason="not_json"}"#
        ),
        1.0
    );
    assert_eq!(records_in(&f.cluster, ISSUE_TOPIC).await, 0);
    let record = first_record_headers(&f.cluster, DEAD_LETTER_TOPIC).await;
    assert!(
        record.contains(&(DEAD_LETTER_REASON.to_string(), "not_json".to_string())),
        "{record:?}"
    );
    assert!(
        !record
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-api-key")),
        "{record:?}"
    );
}

#[tokio::test]
async fn a_malformed_body_from_an_allow_listed_source_is_dead_lettered() {
    let f = fixture(|c| c.access.allow = vec!["127.0.0.1".into()], &[]);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), b"[1, 2]")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_dead_letters_total{reason="not_object"}"#
        ),
        1.0
    );
    assert_eq!(records_in(&f.cluster, DEAD_LETTER_TOPIC).await, 1);
}

#[tokio::test]
async fn a_malformed_body_from_an_unverified_sender_is_refused_400_not_dead_lettered() {
    // Neither credentials nor an allow-list: anyone may post, so nobody
    // is known.
    let f = fixture(|_| {}, &[]);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-1"), b"not json")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(rejected(&f.app, "not_json"), 1.0);
    assert_eq!(
        metric(
            &f.app,
            r#"popbill_bridge_dead_letters_total{reason="not_json"}"#
        ),
        0.0
    );
    assert_eq!(records_in(&f.cluster, DEAD_LETTER_TOPIC).await, 0);
}

#[tokio::test]
async fn an_empty_body_from_a_verified_sender_is_refused_not_dead_lettered() {
    let f = fixture(|c| c.auth.api_keys = vec![API_KEY.into()], &[]);
    let mut headers = issue_headers("mid-1");
    headers.push(("X-Api-Key", API_KEY.into()));
    let r = exchange(&f.app, peer(), post(&headers, b"")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(rejected(&f.app, "empty_body"), 1.0);
    assert_eq!(records_in(&f.cluster, DEAD_LETTER_TOPIC).await, 0);
}

#[tokio::test]
async fn with_dead_letters_off_a_verified_senders_malformed_body_is_refused() {
    let f = fixture(
        |c| {
            c.auth.api_keys = vec![API_KEY.into()];
            c.dead_letter.enabled = false;
        },
        &[],
    );
    let mut headers = issue_headers("mid-1");
    headers.push(("X-Api-Key", API_KEY.into()));
    let r = exchange(&f.app, peer(), post(&headers, b"not json")).await;
    assert_eq!(r.status, 400, "{r:?}");
}

// --- wait_for ------------------------------------------------------------

#[tokio::test]
async fn wait_for_returns_the_first_copys_verdict() {
    let (lead, copies) = lead_and_copies(1);
    let deadline = Instant::now() + Duration::from_secs(2);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        lead.complete(Ok(Receipt::from_report(2, 5).expect("a real offset")));
    });
    let r = wait_for(copies, std::pin::pin!(tokio::time::sleep_until(deadline)))
        .await
        .expect("confirmed");
    assert_eq!((r.partition(), r.offset()), (2, 5));

    let (lead, copies) = lead_and_copies(2);
    lead.complete(Err(Arc::new(BridgeError::QueueFull)));
    let e = wait_for(copies, std::pin::pin!(tokio::time::sleep_until(deadline)))
        .await
        .expect_err("failed");
    assert!(matches!(*e, BridgeError::QueueFull), "{e:?}");
}

/// A first copy in flight and a second that follows it.
fn lead_and_copies(identity: u128) -> (Lead, Arc<Copies>) {
    let metrics = Arc::new(Metrics::new(&[]));
    let dedup = Arc::new(Dedup::new(&crate::dedup::DedupConfig::default(), metrics));
    let claim = crate::dedup::Claim { identity, body: 1 };
    let Admission::Lead(lead) = dedup.admit(claim, "m") else {
        panic!("the first copy leads")
    };
    let Admission::Follow(copies) = dedup.admit(claim, "m") else {
        panic!("the second copy follows")
    };
    (lead, copies)
}

#[tokio::test]
async fn wait_for_gives_up_at_the_deadline_as_publish_timeout() {
    let (_lead, copies) = lead_and_copies(3);
    let started = Instant::now();
    let e = wait_for(
        copies,
        std::pin::pin!(tokio::time::sleep_until(
            started + Duration::from_millis(100)
        )),
    )
    .await
    .expect_err("no verdict");
    assert!(matches!(*e, BridgeError::PublishTimeout), "{e:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(1),
        "{took:?}"
    );
}

#[tokio::test]
async fn wait_for_a_lead_gone_without_a_verdict_is_abandoned_not_a_hang() {
    let (lead, copies) = lead_and_copies(4);
    drop(lead);
    let e = wait_for(
        copies,
        std::pin::pin!(tokio::time::sleep(Duration::from_secs(5))),
    )
    .await
    .expect_err("no verdict");
    assert!(matches!(*e, BridgeError::Abandoned), "{e:?}");
}
