//! `--dev`: the whole bridge against librdkafka's in-process mock cluster,
//! so a newcomer can post a sample with curl without running Kafka.
//! Nothing is durable: records live in this process's memory only.

use std::time::Duration;

use rdkafka::error::KafkaResult;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

pub type Cluster = MockCluster<'static, DefaultProducerContext>;

/// Keeps the mock cluster alive; it stops when this is dropped.
pub struct DevKafka {
    _cluster: Cluster,
    pub bootstrap: String,
}

/// Starts the mock cluster with the given topics (name, partitions). The
/// mock does not implement topic creation through the admin API, so every
/// topic the bridge will use must be listed here.
pub fn start(topics: &[(String, i32)]) -> KafkaResult<DevKafka> {
    let cluster = MockCluster::new(1)?;
    let bootstrap = cluster.bootstrap_servers();
    for (name, partitions) in topics {
        create_topic(&cluster, name, *partitions)?;
    }
    Ok(DevKafka {
        _cluster: cluster,
        bootstrap,
    })
}

/// Creates a topic (one replica). librdkafka's mock cluster can lose the
/// wake-up of an operation posted right after another one and then serve
/// it a second late: this lets it settle before the next.
pub fn create_topic(cluster: &Cluster, name: &str, partitions: i32) -> KafkaResult<()> {
    cluster.create_topic(name, partitions.max(1), 1)?;
    std::thread::sleep(Duration::from_millis(5));
    Ok(())
}

/// A one-broker mock cluster holding `topics`, one partition each: the
/// unit tests' Kafka.
#[cfg(test)]
pub(crate) fn with_topics(topics: &[&str]) -> Cluster {
    let cluster = MockCluster::new(1).expect("mock cluster");
    for t in topics {
        create_topic(&cluster, t, 1).expect("topic");
    }
    cluster
}

/// A consumer of the mock cluster at `brokers`, in `group`, assigned to
/// partition 0 of `topic` from its first record: the unit tests' reader.
#[cfg(test)]
pub(crate) fn reader(brokers: &str, group: &str, topic: &str) -> rdkafka::consumer::BaseConsumer {
    use rdkafka::consumer::Consumer as _;
    let c: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Offset(0))
        .expect("partition");
    c.assign(&tpl).expect("assign");
    c
}
