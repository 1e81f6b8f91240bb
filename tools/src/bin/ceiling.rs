//! The ceiling for `scripts/bench.sh`: what the Kafka producer alone does,
//! with the bridge's producer settings (acks=all, idempotence,
//! message.timeout.ms), the same record (body, key, headers) on the same
//! topic, and `--concurrency` tasks in a closed loop (each waits for its
//! delivery report before sending the next) for `--seconds`.
//!
//! Prints one JSON line on stdout: deliveries, deliveries/s, latency
//! percentiles (ms, hand-off to delivery report) and errors.
//!
//!   cargo run --release -p popbill-bridge-tools --bin ceiling -- --brokers 127.0.0.1:19092 \
//!     --topic popbill.taxinvoice.state.issue --concurrency 64 --seconds 20

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use popbill_bridge::config::Config;
use popbill_bridge::kafka::KafkaConfig;
use popbill_bridge::kafka::publish::producer_config;
use rdkafka::ClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

#[derive(Parser, Debug)]
struct Args {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:19092")]
    brokers: String,
    /// Topic (must exist: the bridge creates it).
    #[arg(long, default_value = "")]
    topic: String,
    /// Concurrent closed-loop tasks.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// The sample deliveries file.
    #[arg(long, default_value = "src/commands/samples/deliveries.jsonl")]
    fixture: String,
    /// Which sample of the file.
    #[arg(long, default_value = "taxinvoice-issue")]
    sample: String,
    /// Prefix of the per-record unique MID.
    #[arg(long, default_value = "ceiling")]
    mid_prefix: String,
    /// librdkafka message.timeout.ms (the bridge's default kafka.message_timeout).
    #[arg(long, default_value_t = 4000)]
    message_timeout_ms: u64,
    /// librdkafka statistics.interval.ms (the bridge's default).
    #[arg(long, default_value_t = 10000)]
    statistics_interval_ms: u64,
    /// Only write the sample's body (`DIR/body`) and its request headers
    /// without the MID (`DIR/headers`, `Name<TAB>value` lines) for an HTTP
    /// load generator, and the record key the bridge gives it (`DIR/key`,
    /// empty when none) for the minimal bridge, and exit.
    #[arg(long)]
    dump_sample: Option<std::path::PathBuf>,
}

/// Ignores librdkafka statistics (the bridge turns them into gauges).
struct Quiet;
impl ClientContext for Quiet {
    fn stats(&self, _statistics: rdkafka::Statistics) {}
}

/// The record as the bridge writes it, less the per-record parts.
struct Sample {
    body: Vec<u8>,
    key: Option<String>,
    /// Request headers (names as in the sample), MID excluded.
    request: Vec<(String, String)>,
    ce_type: String,
    ce_time: Option<String>,
    ce_subject: Option<String>,
}

fn load(path: &str, name: &str) -> Result<Sample, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{path}: {e}"))?;
        if v["name"] != name {
            continue;
        }
        let body = v["body"].as_str().ok_or("sample has no body")?.to_string();
        let b: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let mut request = Vec::new();
        let mut webhook_type = String::new();
        let mut event_type = None;
        let mut corp = None;
        for (name, val) in v["headers"].as_object().ok_or("sample has no headers")? {
            let k = name.to_ascii_lowercase();
            let val = val.as_str().unwrap_or_default().to_string();
            match k.as_str() {
                "pb-webhook-mid" => continue,
                "pb-webhook-type" => webhook_type = val.clone(),
                "pb-webhook-eventtype" => event_type = Some(val.clone()),
                "pb-webhook-corpnum" => corp = Some(val.clone()),
                _ => {}
            }
            request.push((name.clone(), val));
        }
        let field = |f: &str| b[f].as_str().map(str::to_string);
        let event_type = event_type.or_else(|| field("eventType"));
        let corp = corp.or_else(|| field("corpNum"));
        let item = field("itemKey");
        let key = match (&corp, &item) {
            (Some(c), Some(i)) => Some(format!("{c}:{i}")),
            _ => None,
        };
        let ce_time = field("eventDT")
            .and_then(|s| popbill_bridge::kafka::record::korean_datetime_to_rfc3339(&s));
        return Ok(Sample {
            body: body.into_bytes(),
            key,
            request,
            ce_type: format!(
                "com.popbill.webhook.{webhook_type}.{}",
                event_type.as_deref().unwrap_or("unknown")
            ),
            ce_time,
            ce_subject: item,
        });
    }
    Err(format!("no sample named {name:?} in {path}"))
}

fn headers(s: &Sample, mid: &str, received_at: SystemTime) -> OwnedHeaders {
    let received = humantime::format_rfc3339_millis(received_at).to_string();
    let mut h = OwnedHeaders::new_with_capacity(s.request.len() + 8);
    // The bridge forwards request headers under their lower-case names.
    for (k, v) in &s.request {
        h = h.insert(Header {
            key: &k.to_ascii_lowercase(),
            value: Some(v),
        });
    }
    h = h.insert(Header {
        key: "pb-webhook-mid",
        value: Some(mid),
    });
    let ce_time = s.ce_time.clone().unwrap_or_else(|| received.clone());
    for (key, value) in [
        ("popbill-bridge-received-at", received.as_str()),
        ("ce_specversion", "1.0"),
        ("ce_id", mid),
        ("ce_source", "https://www.popbill.com"),
        ("ce_type", &s.ce_type),
        ("ce_time", &ce_time),
    ] {
        h = h.insert(Header {
            key,
            value: Some(value),
        });
    }
    if let Some(item) = &s.ce_subject {
        h = h.insert(Header {
            key: "ce_subject",
            value: Some(item),
        });
    }
    h
}

/// Sends one record and waits for its report: the latency in µs, or the error.
async fn one(p: &FutureProducer<Quiet>, topic: &str, s: &Sample, mid: &str) -> Result<u64, String> {
    let now = SystemTime::now();
    let ts = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let started = Instant::now();
    let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic)
        .payload(s.body.as_slice())
        .headers(headers(s, mid, now))
        .timestamp(ts);
    if let Some(k) = s.key.as_deref() {
        rec = rec.key(k);
    }
    let report = p.send_result(rec).map_err(|(e, _)| e.to_string())?;
    match report.await {
        Err(_) => Err("report dropped".into()),
        Ok(Err((e, _))) => Err(e.to_string()),
        Ok(Ok(_)) => Ok(started.elapsed().as_micros() as u64),
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let sample = match load(&args.fixture, &args.sample) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("ceiling: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(dir) = &args.dump_sample {
        let headers: String = sample
            .request
            .iter()
            .map(|(k, v)| format!("{k}\t{v}\n"))
            .collect();
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join("body"), &sample.body))
            .and_then(|()| std::fs::write(dir.join("headers"), headers))
            .and_then(|()| std::fs::write(dir.join("key"), sample.key.as_deref().unwrap_or("")));
        if let Err(e) = written {
            eprintln!("ceiling: {}: {e}", dir.display());
            return std::process::ExitCode::FAILURE;
        }
        return std::process::ExitCode::SUCCESS;
    }
    if args.topic.is_empty() {
        eprintln!("ceiling: --topic is required");
        return std::process::ExitCode::from(2);
    }
    // The bridge's own producer settings, from the bridge's own function.
    let kafka = KafkaConfig {
        brokers: args.brokers.clone(),
        client_id: "popbill-bridge-ceiling".into(),
        message_timeout: Duration::from_millis(args.message_timeout_ms),
        statistics_interval: Duration::from_millis(args.statistics_interval_ms),
        ..KafkaConfig::default()
    };
    let producer: FutureProducer<Quiet> =
        match producer_config(&kafka, Config::default().max_record_bytes())
            .create_with_context(Quiet)
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("ceiling: cannot create the producer: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
    let producer = Arc::new(producer);
    let topic: Arc<str> = args.topic.as_str().into();

    // Warm-up (producer id, topic metadata, connection), not measured: the
    // bridge has all of these before its first request.
    let warm = format!("{}-warmup", args.mid_prefix);
    if let Err(e) = one(&producer, &topic, &sample, &warm).await {
        eprintln!("ceiling: warm-up record failed: {e}");
        return std::process::ExitCode::FAILURE;
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::with_capacity(args.concurrency);
    for t in 0..args.concurrency {
        let (p, topic, s) = (producer.clone(), topic.clone(), sample.clone());
        let prefix = args.mid_prefix.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 14);
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let mid = format!("{prefix}-{t}-{n}");
                match one(&p, &topic, &s, &mid).await {
                    Ok(us) => lat.push(us),
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("ceiling: task {t}: {e}");
                        }
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    // Every task ends at the deadline plus at most one message.timeout.ms.
    let bound = Duration::from_secs(args.seconds)
        + Duration::from_millis(args.message_timeout_ms)
        + Duration::from_secs(10);
    let mut all = Vec::new();
    let mut errors = 0u64;
    let mut lost_tasks = 0u64;
    for t in tasks {
        match tokio::time::timeout_at((started + bound).into(), t).await {
            Ok(Ok((lat, e))) => {
                all.extend(lat);
                errors += e;
            }
            _ => lost_tasks += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = producer.flush(Duration::from_secs(5));
    all.sort_unstable();
    let line = serde_json::json!({
        "concurrency": args.concurrency,
        "seconds": elapsed,
        "deliveries": all.len(),
        "deliveries_per_sec": all.len() as f64 / elapsed,
        "p50_ms": pct(&all, 50.0),
        "p99_ms": pct(&all, 99.0),
        "p999_ms": pct(&all, 99.9),
        "max_ms": all.last().map(|&u| u as f64 / 1000.0).unwrap_or(0.0),
        "errors": errors + lost_tasks,
    });
    println!("{line}");
    std::process::ExitCode::SUCCESS
}
