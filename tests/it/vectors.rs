//! `tests/vectors/`: the records the running bridge writes, kept as the
//! contract of the consumer libraries (Rust `crates/popbill-events`, Java
//! `clients/java`, Python `clients/python`), each beside its canonical
//! decoded form. This test posts every sample delivery and every input of
//! `tests/vectors/inputs.jsonl` through a bridge on the real broker,
//! re-drives the fallback once a new route exists, reads everything back
//! `read_committed`, and compares each record with its vector: any drift
//! in what the bridge writes fails here, naming the vector.
//!
//! `POPBILL_WRITE_VECTORS=1` writes the vectors (and their decoded form,
//! by `popbill_events::canonical_json`) instead; review the diff before
//! committing it, since the decoded files are what Java and Python are
//! held to.
//!
//! What differs from run to run is not compared but checked for its
//! relation: the receive time (record timestamp, `popbill-bridge-received-at`,
//! and `ce_time` where the body has no valid `eventDT`) must agree with
//! itself, the re-driven record's `popbill-bridge-redriven-from` must name
//! the fallback record's actual topic, partition and offset (the offset
//! moves when an earlier write to that partition was retried: aborted
//! records and transaction markers take offsets), and the per-run topic
//! prefix reads as the default `popbill.`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::StatusCode;
use popbill_bridge::commands::redrive::{Fate, RedriveArgs, redrive};
use popbill_events::{RawRecord, canonical_json};
use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};
use serde_json::{Value, json};

use crate::common::*;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// One input of `inputs.jsonl`: a delivery as POPBiLL would send it.
struct Input {
    name: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn inputs() -> Vec<Input> {
    let mut out: Vec<Input> = samples("deliveries.jsonl")
        .into_iter()
        .map(|s| Input {
            headers: s.header_list(),
            body: s.body.into_bytes(),
            name: s.name,
        })
        .collect();
    let path = vectors_dir().join("inputs.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let name = v["name"].as_str().expect("name").to_owned();
        let headers = v["headers"]
            .as_object()
            .expect("headers")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("header text").to_owned()))
            .collect();
        let body = match (v["body"].as_str(), v["body_base64"].as_str()) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(b64)) => base64_decode(b64),
            (None, None) => panic!("{name}: no body"),
        };
        out.push(Input {
            name,
            headers,
            body,
        });
    }
    out
}

/// Bytes as a vector holds them: text when UTF-8, else `{"base64": …}`.
fn bytes_json(b: Option<&[u8]>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => Value::from(text),
            Err(_) => json!({ "base64": base64_encode(b) }),
        },
    }
}

/// A record as a vector file holds it, the per-run topic prefix read as
/// the default `popbill`.
fn record_json(m: &OwnedMessage, prefix: &str) -> Value {
    let unprefixed = |s: &str| s.replace(&format!("{prefix}."), "popbill.");
    let headers: Vec<Value> = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    let value = match (h.key, h.value) {
                        ("popbill-bridge-redriven-from", Some(v)) => {
                            Value::from(unprefixed(&String::from_utf8_lossy(v)))
                        }
                        (_, v) => bytes_json(v),
                    };
                    json!([h.key, value])
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "topic": unprefixed(m.topic()),
        "partition": m.partition(),
        "timestamp": m.timestamp().to_millis(),
        "key": bytes_json(m.key()),
        "value": bytes_json(m.payload()),
        "headers": headers,
    })
}

/// The record's receive time as the bridge wrote it three times (record
/// timestamp, `popbill-bridge-received-at`, and `ce_time` when the body's
/// `eventDT` is missing or invalid), replaced by `stored`'s, after checking
/// that the three agree; `stored` is the committed vector (or the record
/// itself when writing).
fn with_receive_time_of(mut fresh: Value, stored: &Value, name: &str) -> Value {
    let received_of = |r: &Value| -> Option<String> {
        r["headers"].as_array()?.iter().find_map(|h| {
            (h[0] == "popbill-bridge-received-at").then(|| h[1].as_str().map(str::to_owned))?
        })
    };
    let fresh_received = received_of(&fresh).unwrap_or_else(|| panic!("{name}: no received-at"));
    let at: popbill_events::jiff::Timestamp = fresh_received
        .parse()
        .unwrap_or_else(|e| panic!("{name}: received-at {fresh_received}: {e}"));
    assert_eq!(
        fresh["timestamp"].as_i64(),
        Some(at.as_millisecond()),
        "{name}: the record timestamp is the receive time"
    );
    let stored_received = received_of(stored).unwrap_or_else(|| panic!("{name}: no received-at"));
    if let Some(headers) = fresh["headers"].as_array_mut() {
        for h in headers {
            if h[1].as_str() == Some(&fresh_received) {
                h[1] = Value::from(stored_received.clone());
            }
        }
    }
    fresh["timestamp"] = stored["timestamp"].clone();
    fresh
}

const REDRIVEN_FROM: &str = "popbill-bridge-redriven-from";

/// `fresh` with its `popbill-bridge-redriven-from` value replaced by
/// `stored`'s, after checking that it is `source` (`topic/partition/offset`
/// of the record it was re-driven from, as read back this run): the offset
/// is not the same from run to run, what it points at is.
fn with_redriven_from_of(mut fresh: Value, stored: &Value, source: &str, name: &str) -> Value {
    let value_of = |r: &Value| -> Option<String> {
        r["headers"]
            .as_array()?
            .iter()
            .find_map(|h| (h[0] == REDRIVEN_FROM).then(|| h[1].as_str().map(str::to_owned))?)
    };
    let fresh_from = value_of(&fresh).unwrap_or_else(|| panic!("{name}: no {REDRIVEN_FROM}"));
    assert_eq!(
        fresh_from, source,
        "{name}: {REDRIVEN_FROM} names the record it was re-driven from"
    );
    let stored_from = value_of(stored).unwrap_or_else(|| panic!("{name}: no {REDRIVEN_FROM}"));
    let form = |v: &str| {
        let mut parts = v.rsplitn(3, '/');
        let offset = parts.next().and_then(|o| o.parse::<i64>().ok());
        let partition = parts.next().and_then(|p| p.parse::<i32>().ok());
        let topic = parts.next();
        (topic.map(str::to_owned), partition, offset.is_some())
    };
    assert_eq!(
        form(&stored_from),
        (form(&fresh_from).0, form(&fresh_from).1, true),
        "{name}: the stored {REDRIVEN_FROM} is {stored_from}, now {fresh_from}"
    );
    if let Some(headers) = fresh["headers"].as_array_mut() {
        for h in headers {
            if h[0] == REDRIVEN_FROM {
                h[1] = Value::from(stored_from.clone());
            }
        }
    }
    fresh
}

#[test]
fn the_redriven_from_offset_may_move_but_must_name_the_fallback_record() {
    let record = |from: &str| json!({"headers": [["ce_id", "x"], [REDRIVEN_FROM, from]]});
    let stored = record("popbill.unrouted/0/2");
    // An earlier write to the fallback partition was retried: the fallback
    // record is at offset 5 this run, and the re-driven record says so.
    let fresh = record("popbill.unrouted/0/5");
    assert_eq!(
        with_redriven_from_of(fresh, &stored, "popbill.unrouted/0/5", "r"),
        stored
    );
    let wrong = std::panic::catch_unwind(|| {
        with_redriven_from_of(
            record("popbill.unrouted/0/4"),
            &stored,
            "popbill.unrouted/0/5",
            "r",
        )
    });
    assert!(
        wrong.is_err(),
        "an offset that is not the fallback record's"
    );
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("json");
    s.push('\n');
    s
}

/// The record of a vector file, as the decoder's input.
fn raw_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => Some(base64_decode(other["base64"].as_str().expect("base64"))),
    }
}

fn decoded_form(record: &Value) -> String {
    let key = raw_bytes(&record["key"]);
    let value = raw_bytes(&record["value"]);
    let headers: Vec<(String, Option<Vec<u8>>)> = record["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| (h[0].as_str().expect("name").to_owned(), raw_bytes(&h[1])))
        .collect();
    let raw = RawRecord {
        key: key.as_deref(),
        value: value.as_deref(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_deref()))
            .collect(),
        timestamp_millis: record["timestamp"].as_i64(),
    };
    canonical_json(&raw.decode()) + "\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn the_vectors_are_what_the_running_bridge_writes() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-vectors-");
    let mut before = test_config(&brokers, &prefix);
    // A verified sender: its malformed deliveries are dead-lettered, not
    // refused, so the dead-letter records are vectors too.
    before.access.allow = vec!["127.0.0.1/32".into()];
    let bridge = start(before.clone()).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    let inputs = inputs();
    for input in &inputs {
        // Retried as POPBiLL would: the first write to a topic created
        // moments ago may miss the deadline on a busy machine.
        let mut answer = post(&bridge, &input.headers, input.body.clone()).await;
        for _ in 0..2 {
            if answer.status == StatusCode::OK {
                break;
            }
            answer = post(&bridge, &input.headers, input.body.clone()).await;
        }
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}: {}",
            input.name,
            answer.body
        );
    }
    bridge.shutdown().await;

    // The operator adds a FAX route; `redrive` moves the fax delivery off
    // the fallback topic (the others there stay: still unrouted).
    let mut after = before.clone();
    after.routes.known.push("FAX.STATE:RESULT".into());
    let args = RedriveArgs {
        config: None,
        brokers: None,
        from: "fallback".into(),
        since: None,
        until: None,
        limit: None,
        dry_run: false,
        from_start: false,
    };
    let (_never, no_stop) = popbill_bridge::signal::signal();
    let summary = redrive(&after, &after.routes.fallback, &args, false, no_stop)
        .await
        .expect("redrive");
    assert_eq!(
        summary.count(|f| matches!(f, Fate::Redriven(_))),
        1,
        "{summary:?}"
    );

    let ledger = after.dedup.ledger_topic.clone();
    let topics: Vec<String> = after
        .topics_in_use()
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| *t != ledger)
        .collect();
    let expected = inputs.len() + 1;
    let records = read_back(
        &brokers,
        &topics,
        expected,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        records.len(),
        expected,
        "one record per input, and the re-driven one"
    );

    // Each record to its input: by MID and value (the one without a MID by
    // value); the fax delivery twice, before and after the re-drive.
    let mut fresh: BTreeMap<String, Value> = BTreeMap::new();
    // Where each record is (`topic/partition/offset`, the prefix read as
    // `popbill.`), for the re-driven record's `popbill-bridge-redriven-from`.
    let mut positions: BTreeMap<String, String> = BTreeMap::new();
    for m in &records {
        let mid = record_header(m, "pb-webhook-mid");
        let input = inputs
            .iter()
            .find(|i| {
                let sent_mid = i
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("pb-webhook-mid"))
                    .map(|(_, v)| v.clone());
                sent_mid == mid && m.payload() == Some(&i.body[..])
            })
            .unwrap_or_else(|| panic!("a record no input explains: {}", m.topic()));
        let name = match (
            input.name.as_str(),
            record_header(m, "popbill-bridge-redriven-from"),
        ) {
            ("fax-result", Some(_)) => "redriven-fax-result".to_owned(),
            ("fax-result", None) => "fallback-fax-result".to_owned(),
            (name, _) => name.to_owned(),
        };
        let position = format!("{}/{}/{}", m.topic(), m.partition(), m.offset())
            .replace(&format!("{prefix}."), "popbill.");
        positions.insert(name.clone(), position);
        let old = fresh.insert(name.clone(), record_json(m, &prefix));
        assert!(old.is_none(), "{name}: two records");
    }

    let dir = vectors_dir();
    let write = std::env::var("POPBILL_WRITE_VECTORS").as_deref() == Ok("1");
    let mut drifted = Vec::new();
    for (name, record) in &fresh {
        let path = dir.join(format!("{name}.record.json"));
        let stored: Option<Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let record = with_receive_time_of(record.clone(), stored.as_ref().unwrap_or(record), name);
        let record = if name == "redriven-fax-result" {
            let source = &positions["fallback-fax-result"];
            with_redriven_from_of(
                record.clone(),
                stored.as_ref().unwrap_or(&record),
                source,
                name,
            )
        } else {
            record
        };
        if write {
            std::fs::write(&path, pretty(&record)).expect("write vector");
            let decoded = dir.join(format!("{name}.decoded.json"));
            std::fs::write(decoded, decoded_form(&record)).expect("write decoded");
        } else if stored.as_ref() != Some(&record) {
            drifted.push(format!(
                "{name}:\n  stored: {}\n  now:    {}",
                stored.map_or("(none)".into(), |s| s.to_string()),
                record
            ));
        }
    }
    // No vector left over from a case that is gone.
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("tests/vectors")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".record.json").map(str::to_owned))
        .collect();
    let made: BTreeSet<String> = fresh.keys().cloned().collect();
    assert!(
        drifted.is_empty(),
        "the bridge no longer writes these vectors (POPBILL_WRITE_VECTORS=1 rewrites them; \
         review the diff, the decoded forms bind the Java and Python clients too):\n{}",
        drifted.join("\n")
    );
    assert_eq!(
        on_disk, made,
        "vector files without an input, or inputs without a file"
    );
}

/// The decoded forms beside the vectors are what popbill-events gives, read
/// through the helper that writes them; no broker needed. (Java and Python
/// check the same files: `clients/java`, `clients/python`.) Also
/// `tests/vectors/synthetic/`: records written by hand for what the test
/// client cannot make the bridge write (bytes that are not UTF-8 in a
/// header, a record without `ce_id`, bodies at serde_json's limits); with
/// `POPBILL_WRITE_VECTORS=1` their decoded forms are rewritten here.
#[test]
fn every_decoded_vector_is_what_popbill_events_gives() {
    let dir = vectors_dir();
    let write = std::env::var("POPBILL_WRITE_VECTORS").as_deref() == Ok("1");
    let mut counts = Vec::new();
    for (dir, synthetic) in [(dir.clone(), false), (dir.join("synthetic"), true)] {
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("tests/vectors") {
            let path = entry.expect("entry").path();
            let Some(name) = path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.strip_suffix(".record.json"))
            else {
                continue;
            };
            let record: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            let decoded = dir.join(format!("{name}.decoded.json"));
            if write && synthetic {
                std::fs::write(&decoded, decoded_form(&record)).expect("write decoded");
            }
            let want = std::fs::read_to_string(&decoded)
                .unwrap_or_else(|e| panic!("{}: {e}", decoded.display()));
            assert_eq!(decoded_form(&record), want, "{name}");
            n += 1;
        }
        counts.push(n);
    }
    let (n, synthetic) = (counts[0], counts[1]);
    assert!(n >= 30, "{n} vectors: some are missing");
    assert!(
        synthetic >= 10,
        "{synthetic} synthetic vectors: some are missing"
    );
    // The docs state the counts; they follow the files.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (doc, says) in [
        ("tests/vectors/README.md", format!("{n} vectors")),
        (
            "tests/vectors/README.md",
            format!("{synthetic} synthetic records"),
        ),
        (
            "docs/consumers.md",
            format!("{n} records as the running bridge writes them"),
        ),
    ] {
        let text = std::fs::read_to_string(root.join(doc)).expect("doc");
        assert!(text.contains(&says), "{doc} does not say {says:?}");
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64: {text}: {e}"))
}
