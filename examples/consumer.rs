//! How a downstream service should read popbill-bridge's topics.
//!
//! Three rules, each from how POPBiLL and Kafka behave:
//!
//! 1. **At least once.** Commit an offset only after the record was
//!    handled, so a crash re-reads rather than skips. The price is that a
//!    record can be seen twice — rule 2.
//! 2. **Deduplicate by `ce_id`** (the POPBiLL MID, a CloudEvents header):
//!    the bridge publishes one record per event, but a consumer restart, a
//!    frozen broker or a manual re-run can still show an event again.
//!    Keep the ids you handled (here: in memory, bounded; a real service
//!    keeps them with its own state, in the same transaction).
//! 3. **Order per document by `stateDT`.** POPBiLL promises no order: a
//!    retried `Issue` may arrive after the `NTS` of the same invoice. The
//!    record key (`corpNum:itemKey`) keeps a document on one partition;
//!    within it, treat the state as only moving forward and ignore a state
//!    older than the one already applied.
//!
//! ```sh
//! cargo run --example consumer -- --brokers 127.0.0.1:9092 --group invoices
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};

#[derive(Parser)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Consumer group.
    #[arg(long, default_value = "popbill-consumer-example")]
    group: String,
    /// Topics to read, as a regular expression (librdkafka `^` syntax).
    /// The default takes the bridge's delivery topics and skips its ledger
    /// and dead-letter topics.
    #[arg(
        long,
        default_value = r"^popbill\.(taxinvoice|statement|cashbill|ht|kakao|unrouted).*"
    )]
    topics: String,
    /// Stop after this many seconds without a record (0: run forever).
    #[arg(long, default_value_t = 0)]
    idle_exit: u64,
}

/// Ids already handled, forgetting the oldest beyond `cap`.
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
    cap: usize,
}

impl Seen {
    fn new(cap: usize) -> Self {
        Seen {
            ids: HashSet::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// True when `id` is new (and now remembered).
    fn first_time(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
        if self.order.len() > self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

fn header<'a>(m: &'a impl Message, name: &str) -> Option<&'a str> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", &args.group)
        .set("auto.offset.reset", "earliest")
        // Rule 1: commit by hand, after handling.
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&args.topics])?;

    let mut seen = Seen::new(1_000_000);
    // Document key → the latest stateDT applied.
    let mut state: HashMap<String, String> = HashMap::new();
    loop {
        let msg = if args.idle_exit > 0 {
            match tokio::time::timeout(Duration::from_secs(args.idle_exit), consumer.recv()).await {
                Ok(m) => m?,
                Err(_) => break,
            }
        } else {
            consumer.recv().await?
        };
        let Some(id) = header(&msg, "ce_id").map(str::to_string) else {
            // Not a delivery record (e.g. the bridge's ledger): not ours.
            consumer.commit_message(&msg, CommitMode::Async)?;
            continue;
        };
        let event = header(&msg, "ce_type").unwrap_or_default().to_string();
        let document = msg
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        let body: serde_json::Value = msg
            .payload()
            .and_then(|p| serde_json::from_slice(p).ok())
            .unwrap_or_default();
        let state_dt = body["stateDT"].as_str().unwrap_or_default().to_string();

        if !seen.first_time(&id) {
            // Rule 2.
            println!("skip   {id} (already handled)");
        } else if !state_dt.is_empty()
            && state
                .get(&document)
                .is_some_and(|applied| applied.as_str() > state_dt.as_str())
        {
            // Rule 3: yyyyMMddHHmmss strings compare in time order.
            println!(
                "stale  {id} {event} {document} stateDT={state_dt} (newer state already applied)"
            );
        } else {
            if !state_dt.is_empty() {
                state.insert(document.clone(), state_dt.clone());
            }
            println!(
                "apply  {id} {event} {document} stateDT={state_dt} ({}:{}@{})",
                msg.topic(),
                msg.partition(),
                msg.offset()
            );
        }
        // Rule 1: the record is handled; now its offset may be committed.
        consumer.commit_message(&msg, CommitMode::Async)?;
    }
    Ok(())
}
