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
    let (ledger, metrics) = started_ledger(&cluster, "ut.ledger");
    let long_mid = "m".repeat(15_000);
    let n = 1_200u128;
    for i in 0..n {
        ledger.record(entry(i, format!("{long_mid}{i}")));
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

/// Issue #25: the writer waited 2 ms to fill a batch, so confirmations a
/// few milliseconds apart each got a ledger record of their own (at 10,000
/// deliveries/s, 500 records a second, ~1 µs of librdkafka's CPU a
/// delivery). Confirmations within the linger share one record.
#[tokio::test]
async fn confirmations_a_few_milliseconds_apart_share_one_ledger_record() {
    // Three confirmations 4 ms apart; a machine too busy to make them
    // within 12 ms cannot judge the linger, and tries again.
    for attempt in 0..5 {
        let topic = format!("ut.ledger.linger{attempt}");
        let cluster = crate::kafka::mock::with_topics(&[&topic]);
        let (ledger, metrics) = started_ledger(&cluster, &topic);
        let started = Instant::now();
        for i in 0..3u128 {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
            ledger.record(short_entry(i));
        }
        let spread = started.elapsed();
        wait_until_written(&metrics, 3).await;
        ledger.close(Instant::now() + Duration::from_secs(5)).await;
        assert!(
            metrics_say(&metrics, "popbill_bridge_dedup_ledger_writes_total 3"),
            "the three confirmations were not all written"
        );
        if spread > Duration::from_millis(12) {
            continue;
        }
        let records = ledger_values(&cluster, &topic, 3).await;
        assert_eq!(
            records.len(),
            1,
            "confirmations {spread:?} apart in all were written as {records:?}"
        );
        assert_eq!(records[0].lines().count(), 3, "{records:?}");
        return;
    }
    panic!(
        "five tries never recorded three confirmations within 12 ms: too busy a machine to judge"
    );
}

/// More confirmations within one linger than a record takes: written at
/// its end, as full records and the rest, none left behind.
#[tokio::test]
async fn more_confirmations_than_a_record_takes_are_split_into_full_records() {
    let (cluster, ledger, metrics) = ledger_given("ut.ledger.split", 600);
    wait_until_written(&metrics, 600).await;
    ledger.close(Instant::now() + Duration::from_secs(5)).await;
    let records = ledger_values(&cluster, "ut.ledger.split", 600).await;
    let lines: Vec<usize> = records.iter().map(|r| r.lines().count()).collect();
    assert_eq!(lines, [512, 88], "lines of each ledger record");
}

/// `Ledger::close` waits for the writer, and the bridge flushes its
/// producer next: a batch still in its linger when shutdown comes must be
/// written (Kafka's report in) by the time `close` returns, not left to a
/// task of its own that the flush may not include.
#[tokio::test]
async fn a_batch_in_its_linger_at_shutdown_is_written_before_close_returns() {
    let (_cluster, ledger, metrics) = ledger_given("ut.ledger.close", 3);
    // The writer takes the first entry and sleeps its linger.
    tokio::time::sleep(Duration::from_millis(2)).await;
    ledger.close(Instant::now() + Duration::from_secs(10)).await;
    assert!(
        metrics_say(&metrics, "popbill_bridge_dedup_ledger_writes_total 3"),
        "{}",
        String::from_utf8_lossy(&metrics.render())
    );
}

/// An entry whose line is short: the event `i`, at offset `i`.
fn short_entry(i: u128) -> Entry {
    entry(i, format!("mid-{i}"))
}

/// The event `i` with the MID `id`, at offset `i`.
fn entry(i: u128, id: String) -> Entry {
    Entry {
        claim: Claim {
            identity: i,
            body: 7,
        },
        id,
        topic: "popbill.taxinvoice.state.issue".into(),
        receipt: Receipt::from_report(0, i as i64).expect("a real offset"),
    }
}

/// A mock cluster with `topic`, a ledger writing to it, and its metrics,
/// given `n` short entries at once.
fn ledger_given(topic: &str, n: u128) -> (crate::kafka::mock::Cluster, Ledger, Arc<Metrics>) {
    let cluster = crate::kafka::mock::with_topics(&[topic]);
    let (ledger, metrics) = started_ledger(&cluster, topic);
    for i in 0..n {
        ledger.record(short_entry(i));
    }
    (cluster, ledger, metrics)
}

/// A ledger writing to `topic` of the mock `cluster`, and its metrics.
fn started_ledger(cluster: &crate::kafka::mock::Cluster, topic: &str) -> (Ledger, Arc<Metrics>) {
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
    (Ledger::start(topic, producer, metrics.clone()), metrics)
}

/// Until `n` events were written to the ledger, for 10 s at most.
async fn wait_until_written(metrics: &Metrics, n: u64) {
    let line = format!("popbill_bridge_dedup_ledger_writes_total {n}");
    let until = Instant::now() + Duration::from_secs(10);
    while !metrics_say(metrics, &line) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metrics_say(metrics: &Metrics, line: &str) -> bool {
    String::from_utf8(metrics.render())
        .unwrap_or_default()
        .lines()
        .any(|l| l == line)
}

/// The values of the records on `topic` (one partition), read until they
/// hold `lines` lines (or for 10 s).
async fn ledger_values(
    cluster: &crate::kafka::mock::Cluster,
    topic: &str,
    lines: usize,
) -> Vec<String> {
    use rdkafka::message::Message as _;
    let (brokers, topic) = (cluster.bootstrap_servers(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c = crate::kafka::mock::reader(&brokers, "ut-ledger-reader", &topic);
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let mut out: Vec<String> = Vec::new();
        while out.iter().map(|v| v.lines().count()).sum::<usize>() < lines
            && std::time::Instant::now() < until
        {
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                let m = m.expect("reading the ledger");
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
        }
        out
    })
    .await
    .expect("consumer thread")
}
