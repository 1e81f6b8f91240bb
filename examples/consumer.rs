//! How a downstream service should read popbill-bridge's topics, with the
//! `popbill-events` crate (`crates/popbill-events`).
//!
//! Four rules, each from how POPBiLL and Kafka behave:
//!
//! 0. **Read committed.** The bridge writes each record in a Kafka
//!    transaction and answers POPBiLL `OK` only after the commit; a
//!    delivery whose transaction aborted is answered 503 and sent again.
//!    With `isolation.level=read_committed` the consumer sees only
//!    committed records: one per event. `read_uncommitted` (the Java
//!    client's default) also shows the aborted ones, as duplicates.
//!    librdkafka reads committed by default; `configure_consumer` sets it
//!    anyway, so no copied configuration can lose it.
//! 1. **At least once.** Commit an offset only after the record was
//!    handled, so a crash re-reads rather than skips. The price is that a
//!    record can be seen twice — rule 2.
//! 2. **Deduplicate by `ce_id`** (the POPBiLL MID, a CloudEvents header):
//!    the bridge publishes one record per event, but a consumer restart
//!    re-reads what it had not committed, and a manual re-run (a new MID
//!    or beyond the bridge's window) or the bridge's limits
//!    (`docs/duplicates.md`) can still show an event again.
//!    `popbill_events::Gate` keeps the ids handled (here: in memory,
//!    bounded by a window; a real service keeps them with its own state, in
//!    the same transaction).
//! 3. **Order per document by `stateDT`.** POPBiLL promises no order: a
//!    retried `Issue` may arrive after the `NTS` of the same invoice. The
//!    record key (`corpNum:itemKey`) keeps a document on one partition;
//!    within it, treat the state as only moving forward and ignore a state
//!    older than the one already applied (`Verdict::Stale`).
//!
//! ```sh
//! cargo run --example consumer -- --brokers 127.0.0.1:9092 --group invoices
//! ```

use std::time::Duration;

use clap::Parser;
use popbill_events::time::KST;
use popbill_events::{DecodeError, Delivery, Event, Gate, RawRecord, Verdict};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;

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
    /// How long an id is remembered, in record time (the bridge's own
    /// duplicate window is 48 hours).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "48h")]
    window: Duration,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", &args.group)
        .set("auto.offset.reset", "earliest")
        // Rule 1: commit by hand, after handling.
        .set("enable.auto.commit", "false");
    // Rule 0: isolation.level=read_committed.
    let consumer: StreamConsumer = popbill_events::configure_consumer(&mut config).create()?;
    consumer.subscribe(&[&args.topics])?;

    // Rules 2 and 3.
    let mut gate = Gate::new(args.window);
    loop {
        let msg = if args.idle_exit > 0 {
            match tokio::time::timeout(Duration::from_secs(args.idle_exit), consumer.recv()).await {
                Ok(m) => m?,
                Err(_) => break,
            }
        } else {
            consumer.recv().await?
        };
        let place = format!("{}:{}@{}", msg.topic(), msg.partition(), msg.offset());
        match RawRecord::from(&msg).decode() {
            // Not a delivery record (e.g. the bridge's ledger): not ours.
            Err(DecodeError::NotADelivery) => {}
            // A body that is not a JSON object (a dead letter): keep it
            // somewhere a person will look; never block the partition on it.
            Err(DecodeError::Body { envelope, error }) => {
                println!("bad    {} {error} ({place})", envelope.cloud_event.id);
            }
            Err(e) => println!("bad    {e} ({place})"),
            Ok(d) => match gate.check(&d) {
                // Rule 2.
                Verdict::Duplicate => println!("skip   {} (already handled)", d.id()),
                // Rule 3.
                Verdict::Stale { applied } => {
                    println!(
                        "stale  {} (older than the stateDT {} already applied)",
                        describe(&d),
                        applied.display_with_offset(KST)
                    );
                    gate.record(&d);
                }
                Verdict::Apply => {
                    handle(&d);
                    println!("apply  {} ({place})", describe(&d));
                    // Only now is the event handled.
                    gate.record(&d);
                }
            },
        }
        // Rule 1: the record is handled; now its offset may be committed.
        consumer.commit_message(&msg, CommitMode::Async)?;
    }
    Ok(())
}

/// Where a real service applies the event to its own state.
fn handle(d: &Delivery) {
    match &d.event {
        Event::TaxInvoice(t) => {
            let _ = (t.state(), t.nts_succeeded());
        }
        Event::Statement(_)
        | Event::CashReceipt(_)
        | Event::HometaxTaxInvoice(_)
        | Event::HometaxCashReceipt(_)
        | Event::Kakao(_) => {}
        // Unknown products (SMS, fax, ...) keep their raw JSON.
        Event::Unknown(u) => {
            let _ = &u.body;
        }
        _ => {}
    }
}

fn describe(d: &Delivery) -> String {
    let event = d
        .event
        .event_type()
        .map(|e| e.as_str().to_owned())
        .unwrap_or_default();
    let document = d.document().map(|k| k.to_string()).unwrap_or_default();
    let state_dt = d.state_dt().map(|t| t.raw()).unwrap_or_default();
    format!(
        "{} {}:{event} {document} stateDT={state_dt}",
        d.id(),
        d.event.webhook_type()
    )
}
