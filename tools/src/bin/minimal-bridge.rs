//! The minimal bridge for `scripts/bench.sh`: the least a webhook → Kafka
//! bridge can do, so that every bench run measures the real limit of
//! hyper + rdkafka on that machine beside popbill-bridge (issue #12).
//!
//! Each POST: read the body, produce it as it came to `--topic` with the
//! bridge's producer settings (built by its `kafka::publish::producer_config`:
//! acks=all, idempotence, the bounded queue, message.max.bytes), optionally with a
//! fixed `--key` so the records land on one partition as the bridge's do for
//! one sample, and answer `OK` only after the delivery report (503 if it
//! fails). No parsing, routing, record headers, duplicate detection, limits,
//! metrics or logs (`--record` adds the parsing and the record headers of
//! popbill-bridge, and nothing else: the floor of its record format). Same
//! allocator as the bridge (mimalloc, its settings), so the ratio to it
//! measures code, not the allocator. SIGTERM or SIGINT:
//! flush and exit.
//!
//!   cargo run --release -p popbill-bridge-tools --bin minimal-bridge -- \
//!     --brokers 127.0.0.1:19092 --listen 127.0.0.1:18080 --topic popbill.taxinvoice.state.issue

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use popbill_bridge::config::Config;
use popbill_bridge::delivery::Delivery;
use popbill_bridge::kafka::KafkaConfig;
use popbill_bridge::kafka::publish::{producer_config, record_key, record_timestamp};
use popbill_bridge::kafka::record::{CloudEventsConfig, headers};
use rdkafka::ClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:19092")]
    brokers: String,
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: String,
    /// Every body goes to this topic (it must exist).
    #[arg(long)]
    topic: String,
    /// A fixed record key (the bridge keys a sample's records by corpNum:itemKey).
    #[arg(long)]
    key: Option<String>,
    #[arg(long, default_value_t = 4000)]
    message_timeout_ms: u64,
    #[arg(long, default_value_t = 10000)]
    statistics_interval_ms: u64,
    /// Write the record popbill-bridge writes: the body parsed by its own
    /// `Delivery::parse` (400 when it does not parse), keyed and timestamped
    /// by its own `kafka::publish::record_key` and `record_timestamp`, with
    /// the headers of its own `kafka::record::headers` (the `Pb-Webhook-*`
    /// ones and the CloudEvents attributes). Still no routing, duplicate detection, limits,
    /// metrics or logs: what any bridge writing that record format pays,
    /// the floor under popbill-bridge's cost (issue #25). Overrides `--key`.
    /// Unlike the bridge, a delivery without `Pb-Webhook-MID` gets an empty
    /// `ce_id` (the bench always sends one).
    #[arg(long)]
    record: bool,
}

/// Ignores librdkafka statistics, as the ceiling does.
struct Quiet;
impl ClientContext for Quiet {
    fn stats(&self, _statistics: rdkafka::Statistics) {}
}

struct State {
    producer: FutureProducer<Quiet>,
    topic: String,
    record: RecordKind,
}

/// What each delivery becomes.
enum RecordKind {
    /// The body as it came, with the fixed key if one was given.
    Body { key: Option<String> },
    /// The record popbill-bridge writes (`--record`), with these
    /// CloudEvents attributes.
    Bridges(CloudEventsConfig),
}

async fn handle(
    s: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = |code, text: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *r.status_mut() = code;
        Ok(r)
    };
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return answer(StatusCode::BAD_REQUEST, "bad body");
    };
    let delivered = match &s.record {
        RecordKind::Body { key } => {
            let mut rec: FutureRecord<'_, str, [u8]> =
                FutureRecord::to(&s.topic).payload(&body[..]);
            if let Some(k) = key.as_deref() {
                rec = rec.key(k);
            }
            send(&s.producer, rec).await
        }
        RecordKind::Bridges(ce) => match send_bridges_record(&s, ce, &parts.headers, &body).await {
            Some(delivered) => delivered,
            None => return answer(StatusCode::BAD_REQUEST, "bad delivery"),
        },
    };
    if delivered {
        answer(StatusCode::OK, "OK")
    } else {
        answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    }
}

/// The delivery as popbill-bridge writes it: parsed, keyed, with its record
/// headers and timestamp. `None` when it does not parse; else whether Kafka
/// confirmed it.
async fn send_bridges_record(
    s: &State,
    ce: &CloudEventsConfig,
    request_headers: &hyper::HeaderMap,
    body: &[u8],
) -> Option<bool> {
    let delivery = Delivery::parse(request_headers, body).ok()?;
    let received_at = SystemTime::now();
    let id = delivery.mid.unwrap_or_default();
    let key = record_key(&delivery);
    let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(&s.topic)
        .payload(delivery.body)
        .headers(headers(request_headers, &delivery, id, ce, received_at))
        .timestamp(record_timestamp(received_at));
    if let Some(k) = key.as_deref() {
        rec = rec.key(k);
    }
    Some(send(&s.producer, rec).await)
}

/// Whether Kafka confirmed the record (false when the queue was full).
async fn send(producer: &FutureProducer<Quiet>, rec: FutureRecord<'_, str, [u8]>) -> bool {
    match producer.send_result(rec) {
        Ok(report) => matches!(report.await, Ok(Ok(_))),
        Err(_) => false,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The bridge's own allocator settings (src/allocator.rs): purge freed
    // memory at once, no transparent huge pages.
    popbill_bridge::allocator::tune();
    let a = Args::parse();
    // The bridge's own producer settings, from the bridge's own function.
    let kafka = KafkaConfig {
        brokers: a.brokers.clone(),
        client_id: "popbill-bridge-minimal".into(),
        message_timeout: Duration::from_millis(a.message_timeout_ms),
        statistics_interval: Duration::from_millis(a.statistics_interval_ms),
        ..KafkaConfig::default()
    };
    let producer =
        producer_config(&kafka, Config::default().max_record_bytes()).create_with_context(Quiet);
    let (producer, listener) = match (producer, tokio::net::TcpListener::bind(&a.listen).await) {
        (Ok(p), Ok(l)) => (p, l),
        (Err(e), _) => return fail(&format!("producer: {e}")),
        (_, Err(e)) => return fail(&format!("{}: {e}", a.listen)),
    };
    let record = if a.record {
        RecordKind::Bridges(CloudEventsConfig::default())
    } else {
        RecordKind::Body { key: a.key }
    };
    let state = Arc::new(State {
        producer,
        topic: a.topic,
        record,
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((io, _)) = accepted else { continue };
                let s = state.clone();
                let svc = service_fn(move |req| handle(s.clone(), req));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(io), svc));
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let _ = state.producer.flush(Duration::from_secs(5));
    std::process::ExitCode::SUCCESS
}

fn fail(what: &str) -> std::process::ExitCode {
    eprintln!("minimal-bridge: {what}");
    std::process::ExitCode::FAILURE
}
