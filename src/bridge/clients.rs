//! The Kafka clients a bridge (or `redrive`) writes with: the producer,
//! the transactional writers, the topics, the duplicates part with its
//! ledger — created once, connecting in the background; and the ledger
//! follower's task.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::config::Config;
use crate::dedup::{Dedup, ledger};
use crate::kafka::client::{ClientEvents, Producer};
use crate::kafka::publish::{self, Publisher};
use crate::kafka::topics::Topics;
use crate::kafka::transactions::GroupCommit;
use crate::route::Router;
use crate::telemetry::metrics::Metrics;

use super::StartError;

/// The Kafka side every user of the bridge's write path needs (serving,
/// `popbill-bridge redrive`): one producer shared by the records, the topic
/// checks and the duplicates ledger.
pub struct KafkaClients {
    /// What the Kafka clients report: the throttled log, a fatal error.
    pub events: Arc<ClientEvents>,
    pub producer: Producer,
    /// Records, as the webhook writes them.
    pub(crate) publisher: Publisher,
    /// Every topic a delivery can go to, made or checked before use.
    pub topics: Arc<Topics>,
    /// Duplicate detection, with its ledger writer when it is on.
    pub dedup: Arc<Dedup>,
    /// The transactional writers, when `kafka.transactions` is on.
    pub(crate) transactions: Option<Arc<GroupCommit>>,
}

impl KafkaClients {
    /// Creates the clients; connecting happens in the background.
    /// `writer_id` names the transactional writers (see
    /// `kafka.transactions.id`); unused when transactions are off.
    pub fn build(
        config: &Config,
        router: &Router,
        metrics: &Arc<Metrics>,
        writer_id: &str,
    ) -> Result<KafkaClients, StartError> {
        let kafka_error = |e: rdkafka::error::KafkaError| {
            StartError::Kafka(config.kafka.describe_client_error(&e))
        };
        let events = Arc::new(ClientEvents::default());
        // With statistics on, readiness waits for the producer's ID.
        if !config.kafka.statistics_interval.is_zero() {
            events.watch_producer_id();
        }
        let producer = publish::create_producer(
            &config.kafka,
            config.max_record_bytes(),
            metrics.clone(),
            events.clone(),
        )
        .map_err(kafka_error)?;
        let topics = Arc::new(
            Topics::new(
                router.routes(),
                &config.kafka,
                config.topics.clone(),
                config.topic_needs(),
                config
                    .dedup
                    .enabled
                    .then(|| config.dedup.ledger_topic.clone()),
                producer.clone(),
                events.clone(),
            )
            .map_err(kafka_error)?,
        );
        let in_transactions = config.kafka.transactions.enabled;
        let dedup = Arc::new(Dedup::new(&config.dedup, metrics.clone()).with_ledger(
            &config.dedup,
            producer.clone(),
            in_transactions,
        ));
        let transactions = if in_transactions {
            Some(
                GroupCommit::start(
                    &config.kafka,
                    publish::producer_config(&config.kafka, config.max_record_bytes()),
                    writer_id,
                    dedup.ledger_records(),
                    metrics.clone(),
                    events.clone(),
                )
                .map_err(kafka_error)?,
            )
        } else {
            None
        };
        let publisher = Publisher::new(
            producer.clone(),
            transactions.clone(),
            config.cloudevents.clone(),
            metrics.clone(),
        );
        Ok(KafkaClients {
            events,
            producer,
            publisher,
            topics,
            dedup,
            transactions,
        })
    }
}

/// Reads the duplicates ledger from its start into `dedup`, then follows it
/// until `stop` fires; `state` tells when it caught up.
pub fn follow_ledger(
    config: &Config,
    topics: &Arc<Topics>,
    dedup: &Arc<Dedup>,
    state: Arc<ledger::LedgerState>,
    metrics: &Arc<Metrics>,
    stop: crate::signal::Signal,
) -> JoinHandle<()> {
    tokio::spawn(
        ledger::Follower {
            kafka: config.kafka.clone(),
            dedup_cfg: config.dedup.clone(),
            topics: topics.clone(),
            dedup: dedup.clone(),
            state,
            metrics: metrics.clone(),
        }
        .run(stop),
    )
}
