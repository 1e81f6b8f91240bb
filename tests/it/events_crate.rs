//! The consumer crate (`crates/popbill-events`) against what the bridge
//! really writes: every sample delivery through the running bridge into a
//! real broker (`scripts/kafka.sh start`, or `KAFKA_BOOTSTRAP_SERVERS`),
//! read back and decoded. Catches any drift between the record format the
//! bridge writes (`src/record.rs`) and the one the crate reads.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::StatusCode;
use popbill_events::{DecodeError, Event, Gate, RawRecord, Verdict, WebhookType};
use rdkafka::Message;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn every_record_the_bridge_writes_decodes_with_popbill_events() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-events-");
    let bridge = start(test_config(&brokers, &prefix)).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;

    let samples = samples("deliveries.jsonl");
    for s in &samples {
        let a = post(&bridge, &s.header_list(), s.body.clone().into_bytes()).await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", s.name, a.body);
    }

    let topics: Vec<String> = [
        "taxinvoice.state.issue",
        "taxinvoice.state.nts",
        "taxinvoice.state.cancelissue",
        "taxinvoice.state.open",
        "taxinvoice.state.closedown",
        "taxinvoice.state.manual",
        "statement.state.issue",
        "cashbill.state.nts",
        "ht.taxinvoicexml.httaxinvoice",
        "ht.cashbill.htcashbill",
        "kakao.state.result",
        "unrouted",
        "ledger",
    ]
    .iter()
    .map(|t| format!("{prefix}.{t}"))
    .collect();
    let n = samples.len();
    let records = read_back(
        &brokers,
        &topics,
        n + 1,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await;

    let mut decoded = BTreeMap::new();
    let mut ledger = 0;
    for m in &records {
        match RawRecord::from(m).decode() {
            Ok(d) => {
                assert!(!m.topic().ends_with(".ledger"));
                decoded.insert(d.id().to_owned(), d);
            }
            Err(DecodeError::NotADelivery) => {
                assert!(m.topic().ends_with(".ledger"), "{}", m.topic());
                ledger += 1;
            }
            Err(e) => panic!("{}: {e}", m.topic()),
        }
    }
    assert_eq!(decoded.len(), n, "one decoded delivery per sample");
    assert!(ledger >= 1, "the ledger is not a delivery topic");

    for s in &samples {
        let mid = s.header("Pb-Webhook-MID").expect("mid");
        let d = decoded
            .get(mid)
            .unwrap_or_else(|| panic!("{}: no record", s.name));
        let ty = WebhookType::parse(s.header("Pb-Webhook-Type").expect("type"));
        assert_eq!(d.event.webhook_type(), ty, "{}", s.name);
        assert!(!matches!(d.event, Event::Unknown(_)), "{}", s.name);
        let e = &d.envelope;
        assert_eq!(e.mid.as_deref(), Some(mid));
        assert_eq!(e.cloud_event.spec_version.as_deref(), Some("1.0"));
        assert!(
            e.received_at.is_some() && e.timestamp.is_some(),
            "{}",
            s.name
        );
        // ce_time is the body's eventDT, read the same way by both.
        let event_dt = d.event.event_dt().expect("eventDT");
        assert_eq!(e.cloud_event.time, event_dt.timestamp().ok(), "{}", s.name);
        // The key is the document, or the MID.
        let key = d.document().map(|k| k.to_string());
        assert_eq!(e.key, key.or(Some(mid.to_owned())), "{}", s.name);
        assert_eq!(e.cloud_event.subject, s.body_field("itemKey"), "{}", s.name);
        // Custom headers travel; credentials never did.
        if s.header("Pb-Custom-Tenant").is_some() {
            assert!(
                e.other_headers
                    .iter()
                    .any(|(k, v)| k == "pb-custom-tenant" && v.as_deref() == Some(b"acme")),
                "{}",
                s.name
            );
        }
        assert!(
            e.other_headers
                .iter()
                .all(|(k, _)| k != "authorization" && k != "x-api-key")
        );
    }

    // Read twice, in sample order: each applies (or is stale) once, then
    // every copy is a duplicate.
    let mut gate = Gate::new(Duration::from_secs(3600));
    for round in 0..2 {
        for s in &samples {
            let d = &decoded[s.header("Pb-Webhook-MID").expect("mid")];
            let v = gate.admit(d);
            if round == 1 {
                assert_eq!(v, Verdict::Duplicate, "{}", s.name);
            } else {
                assert_ne!(v, Verdict::Duplicate, "{}", s.name);
            }
        }
    }
    bridge.shutdown().await;
}
