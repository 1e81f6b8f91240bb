//! Settling a transaction whose commit ended without saying whether it
//! happened: read its first record back as a `read_committed` consumer
//! does.
//!
//! A `read_committed` fetch stops at the partition's last stable offset
//! (LSO), the first offset of a transaction still open. Once the
//! transaction has ended — completed by the coordinator, aborted at its
//! timeout, or aborted by our successor's `init_transactions` — the LSO
//! moves past its records, and the record at the known offset is either
//! returned (committed) or skipped (aborted: the consumer drops records
//! of aborted transactions and moves on).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use crate::kafka::KafkaConfig;
use crate::kafka::client::{KafkaContext, reader_config};
use crate::receipt::Receipt;

/// What reading the record back showed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// The record is visible to `read_committed` consumers.
    Committed,
    /// Consumers moved past its offset without it.
    Aborted,
    /// Not known by the deadline (the transaction still open, or Kafka
    /// not answering), with why.
    Unknown(String),
}

/// Reads `topic`'s record at `at` back, `read_committed`, until `until`.
pub(crate) async fn read_back(
    kafka: &KafkaConfig,
    context: KafkaContext,
    topic: &str,
    at: Receipt,
    until: Instant,
) -> Settled {
    let group = format!("{}-settle", kafka.client_id);
    let cfg = reader_config(kafka, &group);
    let context = context.in_group(&group, "Describe");
    let topic = topic.to_string();
    let deadline = until.into_std();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer<KafkaContext> = match cfg.create_with_context(context) {
            Ok(c) => c,
            Err(e) => return Settled::Unknown(e.to_string()),
        };
        read_back_with(&consumer, &topic, at, deadline)
    })
    .await
    .unwrap_or_else(|e| Settled::Unknown(e.to_string()))
}

/// The blocking part of [`read_back`], on a consumer made by the caller.
pub(crate) fn read_back_with<C>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    at: Receipt,
    deadline: std::time::Instant,
) -> Settled
where
    C: rdkafka::consumer::ConsumerContext,
{
    let (partition, offset) = (at.partition(), at.offset());
    let mut tpl = TopicPartitionList::new();
    if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
        return Settled::Unknown(e.to_string());
    }
    if let Err(e) = consumer.assign(&tpl) {
        return Settled::Unknown(e.to_string());
    }
    let mut last = String::from("the transaction is still open");
    while std::time::Instant::now() < deadline {
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(m)) if m.offset() == offset => return Settled::Committed,
            Some(Ok(m)) if m.offset() > offset => return Settled::Aborted,
            Some(Ok(_)) => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {
                // At the LSO: past our offset only if the transaction
                // ended and its records were dropped as aborted.
                if let Ok(pos) = consumer.position()
                    && let Some(Offset::Offset(p)) =
                        pos.find_partition(topic, partition).map(|e| e.offset())
                    && p > offset
                {
                    return Settled::Aborted;
                }
            }
            Some(Err(e)) => last = e.to_string(),
            None => {}
        }
    }
    Settled::Unknown(last)
}

#[cfg(test)]
mod tests;
