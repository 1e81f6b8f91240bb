//! The read-back that settles an unknown outcome, on the real broker: the
//! mock cluster does not hide aborted records from readers.

use super::*;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use std::time::Duration;

fn brokers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .expect("KAFKA_BOOTSTRAP_SERVERS names the broker (scripts/test.sh sets it)")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{nanos}", std::process::id())
}

async fn topic(brokers: &str) -> String {
    let name = unique("unit-settle-");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let results = admin
        .create_topics(
            &[NewTopic::new(&name, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    name
}

/// One record written in a transaction left open: where it landed.
async fn write_in_open_transaction(p: &FutureProducer, topic: &str) -> Receipt {
    p.begin_transaction().expect("begin");
    let delivered = p
        .send(
            FutureRecord::<str, str>::to(topic).payload("x"),
            Duration::from_secs(5),
        )
        .await
        .expect("written");
    Receipt::from_report(delivered.partition, delivered.offset).expect("an offset")
}

async fn settled(brokers: &str, topic: &str, at: Receipt, within: Duration) -> Settled {
    let kafka = KafkaConfig {
        brokers: brokers.to_string(),
        ..KafkaConfig::default()
    };
    let events = std::sync::Arc::new(crate::kafka::client::ClientEvents::default());
    read_back(
        &kafka,
        KafkaContext::other_client(events),
        topic,
        at,
        Instant::now() + within,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker (KAFKA_BOOTSTRAP_SERVERS); scripts/test.sh runs it"]
async fn a_record_reads_back_committed_aborted_or_unknown_as_its_transaction_ended() {
    let brokers = brokers();
    let topic = topic(&brokers).await;
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("transactional.id", unique("unit-settle-writer-"))
        .create()
        .expect("producer");
    p.init_transactions(Duration::from_secs(10)).expect("init");

    let committed = write_in_open_transaction(&p, &topic).await;
    p.commit_transaction(Duration::from_secs(10))
        .expect("commit");
    assert_eq!(
        settled(&brokers, &topic, committed, Duration::from_secs(10)).await,
        Settled::Committed
    );

    let aborted = write_in_open_transaction(&p, &topic).await;
    p.abort_transaction(Duration::from_secs(10)).expect("abort");
    assert_eq!(
        settled(&brokers, &topic, aborted, Duration::from_secs(10)).await,
        Settled::Aborted
    );

    // Still open: neither, however long the reader waits within its
    // deadline.
    let open = write_in_open_transaction(&p, &topic).await;
    assert!(matches!(
        settled(&brokers, &topic, open, Duration::from_secs(2)).await,
        Settled::Unknown(_)
    ));
    p.abort_transaction(Duration::from_secs(10)).expect("abort");
}
