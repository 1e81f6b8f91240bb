//! The source topic: a consumer assigned partition by partition from where
//! to start (stored progress, `--since`, or the beginning) to where each
//! ended when the run began, and the commit of progress.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::args::RedriveArgs;
use crate::config::Config;
use crate::kafka::client::{KafkaContext, reader_config};
use crate::kafka::partitions_of;

/// The source topic, assigned partition by partition from where to start
/// to where it ended when the run began.
pub(super) struct Reader {
    pub(super) consumer: StreamConsumer<KafkaContext>,
    topic: String,
    /// Where progress is committed: `<kafka.client_id>-redrive-<topic>`.
    group: String,
    /// partition → (first offset to read, end offset at the start).
    pub(super) ends: BTreeMap<i32, (i64, i64)>,
}

impl Reader {
    /// `context`: the bridge's, for librdkafka's lines and a refused
    /// group.
    pub(super) async fn open(
        cfg: &Config,
        topic: &str,
        args: &RedriveArgs,
        context: KafkaContext,
    ) -> Result<Reader, String> {
        let group = format!("{}-redrive-{topic}", cfg.kafka.client_id);
        // Records of aborted transactions were never delivered, and
        // reaching a partition's end is news (see the read loop): both
        // from `reader_config`.
        let mut c = reader_config(&cfg.kafka, &group);
        c.set("auto.offset.reset", "earliest");
        let consumer: StreamConsumer<KafkaContext> = c
            .create_with_context(context.in_group(&group, "Read"))
            .map_err(|e| cfg.kafka.describe_client_error(&e))?;
        let (topic_owned, timeout) = (topic.to_string(), cfg.kafka.admin_timeout);
        let (since, from_start) = (args.since, args.from_start);
        let (consumer, planned) = tokio::task::spawn_blocking(move || {
            let planned = plan(&consumer, &topic_owned, timeout, since, from_start);
            (consumer, planned)
        })
        .await
        .map_err(|e| e.to_string())?;
        let ends = match planned {
            Ok(ends) => ends,
            Err(e) => return Err(group_refusal(&consumer, &group).await.unwrap_or(e)),
        };
        Ok(Reader {
            consumer,
            topic: topic.to_string(),
            group,
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
        self.consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
            if is_group_refusal(&e) {
                refused(&self.group)
            } else {
                format!(
                    "committing progress in consumer group {} failed: {e}",
                    self.group
                )
            }
        })
    }
}

/// What a refused progress group says: the group, the operation, the ACL.
fn refused(group: &str) -> String {
    format!(
        "Kafka refuses the bridge consumer group {group}, where redrive keeps its progress (GroupAuthorizationFailed): grant its principal Read on group {group} (or the prefix <kafka.client_id>-redrive-; docs/deploy.md, ACLs)"
    )
}

/// When planning failed: whether the authorizer refused the group. Kafka
/// answers the progress lookup (OffsetFetch) of a refused group with a
/// timeout; the refusal itself comes on the side, to the consumer's queue
/// or to the context.
async fn group_refusal(consumer: &StreamConsumer<KafkaContext>, group: &str) -> Option<String> {
    let next = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await;
    let queued = matches!(&next, Ok(Err(e)) if is_group_refusal(e));
    (queued || consumer.context().group_refused()).then(|| refused(group))
}

fn is_group_refusal(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed)
}

/// Per partition of `topic`: where to start (stored progress, `--since`,
/// or the beginning) and where it ended when the run began; assigns the
/// consumer accordingly.
fn plan(
    consumer: &StreamConsumer<KafkaContext>,
    topic: &str,
    timeout: Duration,
    since: Option<SystemTime>,
    from_start: bool,
) -> Result<BTreeMap<i32, (i64, i64)>, String> {
    let partitions = partitions_of(consumer, topic, timeout)?;
    let mut wanted = TopicPartitionList::new();
    for &p in &partitions {
        wanted
            .add_partition_offset(topic, p, Offset::Stored)
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
                at.add_partition_offset(topic, p, Offset::Offset(ms))
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
            .fetch_watermarks(topic, p, timeout)
            .map_err(|e| e.to_string())?;
        let offset_of = |tpl: &TopicPartitionList| {
            tpl.find_partition(topic, p).and_then(|e| match e.offset() {
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
            .add_partition_offset(topic, p, Offset::Offset(start))
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&assign).map_err(|e| e.to_string())?;
    Ok(ends)
}
