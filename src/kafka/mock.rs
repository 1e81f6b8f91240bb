//! `--dev`: the whole bridge against librdkafka's in-process mock cluster,
//! so a newcomer can post a sample with curl without running Kafka.
//! Nothing is durable: records live in this process's memory only.

use rdkafka::error::KafkaResult;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// Keeps the mock cluster alive; it stops when this is dropped.
pub struct DevKafka {
    _cluster: MockCluster<'static, DefaultProducerContext>,
    pub bootstrap: String,
}

/// Starts the mock cluster with the given topics (name, partitions). The
/// mock does not implement topic creation through the admin API, so every
/// topic the bridge will use must be listed here.
pub fn start(topics: &[(String, i32)]) -> KafkaResult<DevKafka> {
    let cluster = MockCluster::new(1)?;
    let bootstrap = cluster.bootstrap_servers();
    for (name, partitions) in topics {
        cluster.create_topic(name, (*partitions).max(1), 1)?;
    }
    Ok(DevKafka {
        _cluster: cluster,
        bootstrap,
    })
}
