//! Decode cost per record, over the sample deliveries of `tests/fixtures/`
//! written as the bridge writes them (12 headers, the body as value), and
//! over the records of `tests/vectors/` (as the Java and Python benchmarks).
//!
//! ```sh
//! cargo run -p popbill-events --release --example decode_bench
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use popbill_events::serde_json::{self, Value};
use popbill_events::{Gate, RawRecord};

struct Record {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

fn records() -> Result<Vec<(String, Record)>, Box<dyn std::error::Error>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../src/commands/samples/deliveries.jsonl"
    );
    let mut out = Vec::new();
    for line in std::fs::read_to_string(path)?.lines() {
        let v: Value = serde_json::from_str(line)?;
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        let body = v["body"].as_str().unwrap_or_default().as_bytes().to_vec();
        let parsed: Value = serde_json::from_slice(&body)?;
        let mut headers: Vec<(String, Vec<u8>)> = v["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.as_str().unwrap_or_default().into(),
                )
            })
            .filter(|(k, _)| k != "authorization" && k != "x-api-key")
            .collect();
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let mid = get("pb-webhook-mid");
        let ty = get("pb-webhook-type");
        let key = match (parsed["corpNum"].as_str(), parsed["itemKey"].as_str()) {
            (Some(c), Some(i)) => format!("{c}:{i}"),
            _ => mid.clone(),
        };
        for (k, v) in [
            (
                "popbill-bridge-received-at",
                "2025-11-14T10:00:00.000Z".to_owned(),
            ),
            ("ce_specversion", "1.0".to_owned()),
            ("ce_id", mid),
            ("ce_source", "https://www.popbill.com".to_owned()),
            ("ce_type", format!("com.popbill.webhook.{ty}.x")),
            ("ce_time", "2025-11-14T09:30:11+09:00".to_owned()),
        ] {
            headers.push((k.to_owned(), v.into_bytes()));
        }
        out.push((
            name,
            Record {
                key: key.into_bytes(),
                value: body,
                headers,
            },
        ));
    }
    Ok(out)
}

/// The records of `tests/vectors/` (what the Java and Python benchmarks
/// decode): bytes are text, or `{"base64": …}` for the one dead letter that
/// is not UTF-8, which is left out here (no base64 decoder in this crate).
fn vectors() -> Result<Vec<Record>, Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");
    let text = |v: &Value| v.as_str().map(|s| s.as_bytes().to_vec());
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".record.json"))
        .collect();
    paths.sort();
    for path in paths {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let Some(value) = text(&v["value"]) else {
            continue;
        };
        let headers = v["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| Some((h[0].as_str()?.to_owned(), text(&h[1])?)))
            .collect();
        out.push(Record {
            key: text(&v["key"]).unwrap_or_default(),
            value,
            headers,
        });
    }
    Ok(out)
}

fn raw(r: &Record) -> RawRecord<'_> {
    RawRecord {
        key: Some(&r.key),
        value: Some(&r.value),
        headers: r
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), Some(v.as_slice())))
            .collect(),
        timestamp_millis: Some(1_763_114_400_000),
    }
}

/// Runs `f` over all records for about `budget`; ns per record.
fn measure(recs: &[&Record], budget: Duration, mut f: impl FnMut(&Record)) -> f64 {
    // Warm up.
    for r in recs {
        f(r);
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for r in recs {
            f(r);
        }
        n += recs.len() as u64;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let all = records()?;
    let budget = Duration::from_millis(400);
    let recs: Vec<&Record> = all.iter().map(|(_, r)| r).collect();

    println!("popbill-events decode cost ({} sample records)", recs.len());
    println!("{:<42} {:>10}", "what", "ns/record");
    let full = measure(&recs, budget, |r| {
        black_box(raw(black_box(r)).decode().ok());
    });
    println!(
        "{:<42} {:>10.0}",
        "decode (envelope + typed event), mean", full
    );
    let env = measure(&recs, budget, |r| {
        black_box(raw(black_box(r)).envelope().ok());
    });
    println!(
        "{:<42} {:>10.0}",
        "envelope only (headers, key, times)", env
    );
    let decoded: Vec<_> = recs.iter().filter_map(|r| raw(r).decode().ok()).collect();
    let mut gate = Gate::new(Duration::from_secs(48 * 3600));
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for d in &decoded {
            black_box(gate.admit(d));
        }
        n += decoded.len() as u64;
    }
    println!(
        "{:<42} {:>10.0}",
        "Gate::admit (mostly duplicates)",
        start.elapsed().as_nanos() as f64 / n as f64
    );
    let vectors = vectors()?;
    let vrecs: Vec<&Record> = vectors.iter().collect();
    let v = measure(&vrecs, budget, |r| {
        black_box(raw(black_box(r)).decode().ok());
    });
    println!(
        "{:<42} {:>10.0}",
        format!("decode, the {} tests/vectors records", vrecs.len()),
        v
    );
    let c = measure(&vrecs, budget, |r| {
        black_box(popbill_events::canonical_json(&raw(black_box(r)).decode()));
    });
    println!("{:<42} {:>10.0}", "decode + canonical_json, the same", c);
    println!();
    for (name, r) in &all {
        let ns = measure(&[r], budget / 8, |r| {
            black_box(raw(black_box(r)).decode().ok());
        });
        println!("{:<42} {:>10.0}  ({} B)", name, ns, r.value.len());
    }
    Ok(())
}
