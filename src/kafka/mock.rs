//! `--dev`: the whole bridge against librdkafka's in-process mock cluster,
//! so a newcomer can post a sample with curl without running Kafka.
//! Nothing is durable: records live in this process's memory only.

use rdkafka::error::KafkaResult;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::config::Config;
use crate::route::Router;

/// Keeps the mock cluster alive; it stops when this is dropped.
pub struct DevKafka {
    _cluster: MockCluster<'static, DefaultProducerContext>,
    pub bootstrap: String,
}

/// Starts the mock cluster, points the configuration at it and creates
/// every topic the bridge uses in it.
pub fn start(cfg: &mut Config) -> KafkaResult<DevKafka> {
    let cluster = MockCluster::new(1)?;
    let bootstrap = cluster.bootstrap_servers();
    cfg.kafka.brokers = bootstrap.clone();
    // One mock broker: a production replication setting would make every
    // topic creation fail.
    cfg.topics.replication_factor = 1;
    cfg.topics.settings.clear();
    if let Ok(router) = Router::from_config(&cfg.routes) {
        let partitions = cfg.topics.partitions.max(1);
        for r in router.routes() {
            cluster.create_topic(&r.topic, partitions, 1)?;
        }
    }
    // The mock cluster does not implement topic creation through the admin
    // API, so the dead-letter topic and the ledger are made here too.
    if cfg.dead_letter.enabled {
        cluster.create_topic(&cfg.dead_letter.topic, cfg.topics.partitions.max(1), 1)?;
    }
    if cfg.dedup.enabled {
        cluster.create_topic(
            &cfg.dedup.ledger_topic,
            cfg.dedup.ledger_partitions.max(1),
            1,
        )?;
    }
    Ok(DevKafka {
        _cluster: cluster,
        bootstrap,
    })
}
