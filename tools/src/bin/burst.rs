//! The hometax burst: N deliveries fired at the bridge at once (each on a
//! connection of its own, each with a unique MID), then every one answered
//! `OK` looked up in Kafka. Prints one JSON line: how the answers split
//! (200, the documented shedding 503s, other statuses, connections refused
//! or closed without an answer), latency, and `ok_missing` — acknowledged
//! deliveries not found in Kafka, which must be 0.
//!
//! ```sh
//! cargo run --release -p popbill-bridge-tools --bin burst -- --url http://127.0.0.1:8080/popbill/webhook \
//!   --brokers 127.0.0.1:9092 --topic popbill.taxinvoice.state.issue --count 20000
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use popbill_bridge::commands::{samples, send};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Barrier;

#[derive(Parser)]
struct Args {
    /// host:port of the bridge's webhook listener.
    #[arg(long)]
    addr: String,
    #[arg(long, default_value = "/popbill/webhook")]
    path: String,
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    #[arg(long)]
    mid_prefix: String,
    /// Kafka, to check that every OK landed.
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    topic: String,
}

/// The burst's delivery: the tax-invoice Issue sample, its MID replaced.
fn delivery(mid: &str) -> Result<send::Delivery, String> {
    let sample =
        samples::find("taxinvoice-issue").ok_or("the taxinvoice-issue sample is missing")?;
    let mut d = send::Delivery::from_sample(&sample);
    d.set_header("Pb-Webhook-MID", mid);
    Ok(d)
}

fn checker(brokers: &str) -> Option<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "popbill-bridge-burst-check")
        .set("enable.auto.commit", "false")
        .create()
        .ok()
}

/// Where each partition of `topic` ends now: the burst's records come
/// after. Read from there, not from the beginning: in a benchmark the
/// topic already holds the closed and open loops' millions of records,
/// more than the check could read in its minute (every OK of the 20 s
/// form's bursts was reported missing).
fn ends_now(brokers: &str, topic: &str) -> Vec<(i32, i64)> {
    let Some(consumer) = checker(brokers) else {
        return Vec::new();
    };
    let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return Vec::new();
    };
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions
        .into_iter()
        .filter_map(|p| {
            // Three tries; a partition whose end stays unknown is read
            // from its beginning (slow, but it finds what is there).
            let end = (0..3).find_map(|_| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .ok()
                    .map(|(_, high)| high)
            });
            if end.is_none() {
                eprintln!(
                    "burst: the end of {topic}/{p} is unknown: checking it from its beginning"
                );
            }
            end.map(|e| (p, e))
        })
        .collect()
}

/// The `ce_id`s written to `topic` after `from` (partitions not in it:
/// from their beginning).
fn ids_in_kafka(brokers: &str, topic: &str, from: &[(i32, i64)], want: usize) -> HashSet<String> {
    let Some(consumer) = checker(brokers) else {
        return HashSet::new();
    };
    let mut tpl = TopicPartitionList::new();
    if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) {
        for t in md.topics().iter().filter(|t| t.name() == topic) {
            for p in t.partitions() {
                let start = from
                    .iter()
                    .find(|(id, _)| *id == p.id())
                    .map_or(Offset::Beginning, |(_, end)| Offset::Offset(*end));
                let _ = tpl.add_partition_offset(topic, p.id(), start);
            }
        }
    }
    let _ = consumer.assign(&tpl);
    let mut ids = HashSet::new();
    let until = Instant::now() + Duration::from_secs(60);
    let mut quiet = Instant::now();
    while Instant::now() < until && !(ids.len() >= want && quiet.elapsed() > Duration::from_secs(2))
    {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            quiet = Instant::now();
            if let Some(id) = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "ce_id"))
                .and_then(|h| h.value)
            {
                ids.insert(String::from_utf8_lossy(id).into_owned());
            }
        }
    }
    ids
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // The one POPBiLL sender of the repository: a connection per try, as
    // POPBiLL's own deliveries come.
    let url = format!("http://{}{}", args.addr, args.path);
    let sender = match send::Sender::new(
        &url,
        send::SenderOptions {
            timeout: Duration::from_secs(60),
            ..send::SenderOptions::default()
        },
    ) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("burst: {e}");
            std::process::exit(2);
        }
    };
    let (brokers, topic) = (args.brokers.clone(), args.topic.clone());
    let from = tokio::task::spawn_blocking(move || ends_now(&brokers, &topic))
        .await
        .unwrap_or_default();
    let barrier = Arc::new(Barrier::new(args.count));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.count)
        .map(|i| {
            let (sender, barrier) = (sender.clone(), barrier.clone());
            let mid = format!("{}-{i}", args.mid_prefix);
            tokio::spawn(async move {
                let Ok(d) = delivery(&mid) else {
                    return (mid, None);
                };
                // All at once: every task waits until all are spawned.
                barrier.wait().await;
                let t = sender.try_once(&d).await;
                (mid, Some(t))
            })
        })
        .collect();
    let mut ok = Vec::new();
    let (mut shed, mut other, mut none) = (0usize, 0usize, 0usize);
    let mut latencies = Vec::new();
    for t in tasks {
        let Ok((mid, a)) = t.await else {
            none += 1;
            continue;
        };
        let Some(t) = a else {
            none += 1;
            continue;
        };
        match &t.result {
            Ok(_) if t.succeeded() => {
                latencies.push(t.elapsed);
                ok.push(mid);
            }
            Ok(answer) if answer.status == 503 => {
                latencies.push(t.elapsed);
                shed += 1;
            }
            Ok(_) => other += 1,
            Err(_) => none += 1,
        }
    }
    let took = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0)
    };
    let want = ok.len();
    let (brokers, topic) = (args.brokers.clone(), args.topic.clone());
    let ids = tokio::task::spawn_blocking(move || ids_in_kafka(&brokers, &topic, &from, want))
        .await
        .unwrap_or_default();
    let missing = ok.iter().filter(|m| !ids.contains(*m)).count();
    println!(
        "{{\"burst\":{},\"seconds\":{:.3},\"ok\":{},\"shed_503\":{},\"other_status\":{},\"no_answer\":{},\"p50_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1},\"ok_missing\":{}}}",
        args.count,
        took.as_secs_f64(),
        ok.len(),
        shed,
        other,
        none,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        missing
    );
    if missing > 0 || other > 0 {
        std::process::exit(1);
    }
}
