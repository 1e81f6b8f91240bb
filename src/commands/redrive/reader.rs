//! The source topic: a consumer assigned partition by partition from where
//! to start (stored progress, `--since`, or the beginning) to where each
//! ended when the run began, and the commit of progress.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use super::args::RedriveArgs;
use crate::config::Config;
use crate::kafka::client::base_client_config;
use crate::kafka::partitions_of;

/// The source topic, assigned partition by partition from where to start
/// to where it ended when the run began.
pub(super) struct Reader {
    pub(super) consumer: StreamConsumer,
    topic: String,
    /// partition → (first offset to read, end offset at the start).
    pub(super) ends: BTreeMap<i32, (i64, i64)>,
}

impl Reader {
    pub(super) async fn open(
        cfg: &Config,
        topic: &str,
        args: &RedriveArgs,
    ) -> Result<Reader, String> {
        let mut c = base_client_config(&cfg.kafka);
        c.set(
            "group.id",
            format!("{}-redrive-{topic}", cfg.kafka.client_id),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Reaching a partition's end is news: see the read loop.
        .set("enable.partition.eof", "true")
        // Records of aborted transactions were never delivered.
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest");
        let consumer: StreamConsumer = c
            .create()
            .map_err(|e| cfg.kafka.describe_client_error(&e))?;
        let (topic_owned, timeout) = (topic.to_string(), cfg.kafka.admin_timeout);
        let (since, from_start) = (args.since, args.from_start);
        let (consumer, ends) = tokio::task::spawn_blocking(move || {
            let partitions = partitions_of(&consumer, &topic_owned, timeout)?;
            let mut wanted = TopicPartitionList::new();
            for &p in &partitions {
                wanted
                    .add_partition_offset(&topic_owned, p, Offset::Stored)
                    .map_err(|e| e.to_string())?;
            }
            let committed = consumer
                .committed_offsets(wanted, timeout)
                .map_err(|e| e.to_string())?;
            // Asked partition by partition: `offsets_for_timestamp` asks
            // for the consumer's assignment, which is empty until the
            // assign below (it failed with InvalidArgument on every run).
            let by_time = match since {
                Some(t) => {
                    let ms = t
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0);
                    let mut at = TopicPartitionList::new();
                    for &p in &partitions {
                        at.add_partition_offset(&topic_owned, p, Offset::Offset(ms))
                            .map_err(|e| e.to_string())?;
                    }
                    Some(
                        consumer
                            .offsets_for_times(at, timeout)
                            .map_err(|e| format!("finding the offsets of --since: {e}"))?,
                    )
                }
                None => None,
            };
            let mut ends = BTreeMap::new();
            let mut assign = TopicPartitionList::new();
            for p in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(&topic_owned, p, timeout)
                    .map_err(|e| e.to_string())?;
                let offset_of = |tpl: &TopicPartitionList| {
                    tpl.find_partition(&topic_owned, p)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            Offset::End => Some(high),
                            _ => None,
                        })
                };
                let stored = if from_start {
                    None
                } else {
                    offset_of(&committed)
                };
                let since = by_time.as_ref().and_then(offset_of);
                let start = [Some(low), stored, since]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(low);
                ends.insert(p, (start, high));
                assign
                    .add_partition_offset(&topic_owned, p, Offset::Offset(start))
                    .map_err(|e| e.to_string())?;
            }
            consumer.assign(&assign).map_err(|e| e.to_string())?;
            Ok::<_, String>((consumer, ends))
        })
        .await
        .map_err(|e| e.to_string())??;
        Ok(Reader {
            consumer,
            topic: topic.to_string(),
            ends,
        })
    }

    /// Commits, per partition, the offset after the last finished record.
    pub(super) fn commit(&self, done: &HashMap<i32, i64>) -> Result<(), String> {
        if done.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (&p, &next) in done {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(next))
                .map_err(|e| e.to_string())?;
        }
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| format!("committing progress failed: {e}"))
    }
}
