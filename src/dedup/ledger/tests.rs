use super::*;
use crate::kafka::KafkaConfig;
use tokio::time::Instant;

/// Issue #23: a batch was capped at 512 entries, not bytes, and each
/// line carried the whole MID: MIDs as long as the header limit allows
/// made ledger records Kafka refused (MessageSizeTooLarge), and those
/// events lost cross-replica detection. Every batch must be written.
#[tokio::test]
async fn events_with_the_longest_mids_are_all_written_to_the_ledger() {
    let cluster = crate::kafka::mock::with_topics(&["ut.ledger"]);
    let kafka = KafkaConfig {
        brokers: cluster.bootstrap_servers(),
        statistics_interval: Duration::ZERO,
        ..KafkaConfig::default()
    };
    let metrics = Arc::new(Metrics::new(&[]));
    let producer = crate::kafka::publish::create_producer(
        &kafka,
        // Any record limit above the ledger's largest record.
        2_000_000,
        metrics.clone(),
        Default::default(),
    )
    .expect("producer");
    let ledger = Ledger::start("ut.ledger", producer, metrics.clone());
    let long_mid = "m".repeat(15_000);
    let n = 1_200u128;
    for i in 0..n {
        ledger.record(Entry {
            claim: Claim {
                identity: i,
                body: 7,
            },
            id: format!("{long_mid}{i}"),
            topic: "popbill.taxinvoice.state.issue".into(),
            receipt: Receipt::from_report(0, i as i64).expect("a real offset"),
        });
    }
    // Batches are written by tasks of their own: wait for them all.
    let counted = |text: &str, name: &str| -> u128 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    let until = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while Instant::now() < until {
        text = String::from_utf8(metrics.render()).expect("utf-8");
        let done = counted(&text, "popbill_bridge_dedup_ledger_writes_total ")
            + counted(&text, "popbill_bridge_dedup_ledger_write_failures_total ");
        if done >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ledger.close(Instant::now() + Duration::from_secs(5)).await;
    assert!(
        text.contains(&format!("popbill_bridge_dedup_ledger_writes_total {n}")),
        "{text}"
    );
    assert!(
        text.contains("popbill_bridge_dedup_ledger_write_failures_total 0"),
        "{text}"
    );
}
