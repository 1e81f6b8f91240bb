//! Kafka from the test's side: the real broker a test needs (held shared
//! with the other tests, or alone), reading topics back from the
//! beginning, topic checks, creating a topic and writing a record.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::bridge::unique;

/// The real broker, as one test holds it.
///
/// The tests of this binary run in parallel (libtest, one thread each),
/// and most of those that need the broker only write their own topics:
/// they share it. One stops and restarts it (`outage`): while it runs, no
/// other test may be using the broker, or that test would fail for want
/// of it. So every broker test holds [`BROKER`] for as long as it runs —
/// read (shared) by [`real_broker`] and [`kafka_sh_broker`], write (alone)
/// by [`kafka_sh_broker_alone`]. Tokio's lock is fair: once the test that
/// wants the broker alone waits, tests that ask later wait behind it, so
/// it gets its turn as soon as the running ones end. It is a static, so
/// one lock for the whole process, whichever runtime each test has; it
/// does not reach the other test binaries of the workspace, which cargo
/// runs one after another anyway.
///
/// A test that needs no broker takes nothing, and runs at any time.
pub struct Broker {
    servers: String,
    _shared: Option<RwLockReadGuard<'static, ()>>,
    _alone: Option<RwLockWriteGuard<'static, ()>>,
}

static BROKER: RwLock<()> = RwLock::const_new(());

impl Broker {
    /// The bootstrap servers (`KAFKA_BOOTSTRAP_SERVERS`).
    pub fn servers(&self) -> String {
        self.servers.clone()
    }
}

/// The real broker (`KAFKA_BOOTSTRAP_SERVERS`, which `scripts/test.sh`
/// sets), shared with the other tests, for a test whose point is Kafka
/// itself. Such a test is `#[ignore = "needs a Kafka broker"]`, so it runs
/// only when asked to (`--include-ignored`); without a broker it fails,
/// saying how to give it one. Keep the value for as long as the test runs:
///
/// ```ignore
/// let broker = real_broker().await;
/// let brokers = broker.servers();
/// ```
pub async fn real_broker() -> Broker {
    let servers = servers();
    Broker {
        servers,
        _shared: Some(BROKER.read().await),
        _alone: None,
    }
}

/// As [`real_broker`], for a test that also needs the broker to be the one
/// `scripts/kafka.sh` runs, because it uses that script (`why` says
/// what for): `#[ignore = "needs the Kafka broker of scripts/kafka.sh"]`.
/// `scripts/test.sh` says so with `POPBILL_TEST_KAFKA_SCRIPT=1`; without
/// it the test fails.
pub async fn kafka_sh_broker(why: &str) -> Broker {
    let servers = kafka_sh_servers(why);
    Broker {
        servers,
        _shared: Some(BROKER.read().await),
        _alone: None,
    }
}

/// As [`kafka_sh_broker`], with no other test using the broker until the
/// value is dropped: for a test that stops it.
pub async fn kafka_sh_broker_alone(why: &str) -> Broker {
    let servers = kafka_sh_servers(why);
    Broker {
        servers,
        _shared: None,
        _alone: Some(BROKER.write().await),
    }
}

fn servers() -> String {
    match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
        Ok(b) if !b.trim().is_empty() => b,
        _ => panic!(
            "this test needs a Kafka broker and KAFKA_BOOTSTRAP_SERVERS is not set: \
             run scripts/test.sh, or start one with scripts/kafka.sh start and set \
             KAFKA_BOOTSTRAP_SERVERS to the address it prints"
        ),
    }
}

fn kafka_sh_servers(why: &str) -> String {
    let servers = servers();
    assert!(
        std::env::var("POPBILL_TEST_KAFKA_SCRIPT").as_deref() == Ok("1"),
        "this test needs the Kafka broker of scripts/kafka.sh ({why}), and \
         POPBILL_TEST_KAFKA_SCRIPT is not 1: run scripts/test.sh, or set \
         KAFKA_BOOTSTRAP_SERVERS=$(scripts/kafka.sh start) POPBILL_TEST_KAFKA_SCRIPT=1"
    );
    servers
}

/// Reads every record of `topics` from the beginning until `expected`
/// records arrived and then `settle` passed with no more, or `within`
/// elapsed. Returns what it read; the caller asserts the count.
fn consume(
    brokers: &str,
    topics: &[String],
    expected: usize,
    within: Duration,
    settle: Duration,
    isolation: Isolation,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("it-reader-"))
        .set("isolation.level", isolation.as_str())
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let md = consumer
            .fetch_metadata(Some(t), Duration::from_secs(10))
            .expect("metadata");
        let Some(topic) = md.topics().iter().find(|x| x.name() == t) else {
            continue;
        };
        for p in topic.partitions() {
            tpl.add_partition_offset(t, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let until = Instant::now() + within;
    let mut last = Instant::now();
    while Instant::now() < until {
        if out.len() >= expected && last.elapsed() >= settle {
            break;
        }
        if let Some(r) = consumer.poll(Duration::from_millis(100)) {
            let m = r.expect("consume");
            out.push(m.detach());
            last = Instant::now();
        }
    }
    out
}

/// What a reader sees of transactions: consumers are told to read
/// committed records only; the other view counts what the log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

impl Isolation {
    fn as_str(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// [`consume`] on a blocking thread, as a consumer sees the topics
/// (`read_committed`).
pub async fn read_back(
    brokers: &str,
    topics: &[String],
    expected: usize,
    within: Duration,
    settle: Duration,
) -> Vec<OwnedMessage> {
    read_back_as(
        brokers,
        topics,
        expected,
        within,
        settle,
        Isolation::ReadCommitted,
    )
    .await
}

/// [`consume`] on a blocking thread, with the given isolation.
pub async fn read_back_as(
    brokers: &str,
    topics: &[String],
    expected: usize,
    within: Duration,
    settle: Duration,
    isolation: Isolation,
) -> Vec<OwnedMessage> {
    let (b, t) = (brokers.to_string(), topics.to_vec());
    tokio::task::spawn_blocking(move || consume(&b, &t, expected, within, settle, isolation))
        .await
        .expect("consumer thread")
}

/// Records of `topic` whose `ce_id` is `id`, read from the beginning.
pub async fn records_with_id(brokers: &str, topic: &str, id: &str, expected: usize) -> usize {
    read_back(
        brokers,
        &[topic.to_string()],
        expected,
        Duration::from_secs(15),
        Duration::from_secs(2),
    )
    .await
    .iter()
    .filter(|m| record_header(m, "ce_id").as_deref() == Some(id))
    .count()
}

/// Partitions of `topic` per the broker's metadata (0: no such topic).
pub fn partitions_of(brokers: &str, topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("client");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .unwrap_or(0)
}

pub fn topic_exists(brokers: &str, topic: &str) -> bool {
    partitions_of(brokers, topic) > 0
}

/// The record's headers as (name, value) pairs, in order.
pub fn record_headers(m: &OwnedMessage) -> Vec<(String, Vec<u8>)> {
    m.headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn record_header(m: &OwnedMessage, name: &str) -> Option<String> {
    record_headers(m)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

/// Creates `topic` (one partition, one replica) with topic-level configs,
/// through the admin API of a real broker.
pub async fn create_topic_with(brokers: &str, topic: &str, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let mut t = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let r = admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .expect("create topics");
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
}

/// Writes one record to `topic` (partition and timestamp as given),
/// waiting for Kafka's confirmation.
pub async fn produce_raw(
    brokers: &str,
    topic: &str,
    partition: i32,
    timestamp_ms: i64,
    value: &str,
) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // Sees a partition added moments ago without waiting minutes.
        .set("topic.metadata.refresh.interval.ms", "250")
        .create()
        .expect("producer");
    // A partition added moments ago is unknown to a fresh client until
    // its metadata catches up: try again for a while.
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let sent = producer
            .send(
                FutureRecord::<[u8], str>::to(topic)
                    .partition(partition)
                    .timestamp(timestamp_ms)
                    .key(&b"test"[..])
                    .payload(value),
                Duration::from_secs(10),
            )
            .await;
        match sent {
            Ok(_) => return,
            Err((e, _)) if Instant::now() < until => {
                eprintln!("produce_raw: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err((e, _)) => panic!("not written to {topic}/{partition}: {e}"),
        }
    }
}
