//! A topic serves when every partition's leader answers.
//!
//! Metadata is not enough. Right after CreateTopics (or CreatePartitions)
//! metadata already names a partition's leader while that broker still
//! answers NOT_LEADER: it has not applied the new partition yet. A producer
//! that writes in that window can lose a record to librdkafka's implicit
//! acknowledgement (see [`crate::receipt`]). So before a topic counts
//! as present, each partition's leader must answer a real request: a
//! ListOffsets (the partition's watermarks), which the leader serves only
//! once it leads the partition, as it does a ProduceRequest.

use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};

/// Pause between tries while a partition does not serve yet.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// Longest wait for one answer: a try that hangs must not use up the
/// whole budget of a round.
const ONE_TRY: Duration = Duration::from_secs(2);

/// Waits until `topic` is listed with partitions and every partition from
/// `from` on answers on its leader, trying again every 50 ms within
/// `budget`. Returns how many partitions the topic has (all serving), or
/// the cause of the last failure, naming the partition. Blocks its thread:
/// run it off the async workers.
pub(crate) fn wait_serving<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    from: usize,
    budget: Duration,
) -> Result<usize, String> {
    let until = Instant::now() + budget;
    let left = || until.saturating_duration_since(Instant::now());
    let partitions = loop {
        let listed = client
            .fetch_metadata(Some(topic), left().min(ONE_TRY))
            .map_err(|e| format!("metadata: {e}"))
            .and_then(|m| {
                let t = m
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .ok_or_else(|| "not listed in metadata".to_string())?;
                match t.error() {
                    Some(e) => Err(format!(
                        "metadata: {}",
                        rdkafka::error::RDKafkaErrorCode::from(e)
                    )),
                    None if t.partitions().is_empty() => {
                        Err("listed without partitions".to_string())
                    }
                    None => Ok(t.partitions().len()),
                }
            });
        match listed {
            Ok(n) => break n,
            Err(cause) if left() <= RETRY_EVERY => return Err(cause),
            Err(_) => std::thread::sleep(RETRY_EVERY),
        }
    };
    for partition in from..partitions {
        let p =
            i32::try_from(partition).map_err(|_| format!("partition {partition}: out of range"))?;
        loop {
            match client.fetch_watermarks(topic, p, left().min(ONE_TRY)) {
                Ok(_) => break,
                Err(e) if left() <= RETRY_EVERY => {
                    return Err(format!("partition {p} does not serve yet: {e}"));
                }
                Err(_) => std::thread::sleep(RETRY_EVERY),
            }
        }
    }
    Ok(partitions)
}

#[cfg(test)]
mod tests;
