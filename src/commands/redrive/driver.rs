//! The run itself: the bridge's write path and ledger made ready, the
//! source read a window of records at a time, each re-driven, and progress
//! committed as records finish.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rdkafka::message::Message;

use super::args::RedriveArgs;
use super::progress::Progress;
use super::reader::Reader;
use super::summary::{Fate, Summary, draw};
use super::target::{Target, redrive_one};
use crate::bridge::{KafkaClients, Parts, follow_ledger};
use crate::config::Config;
use crate::dedup::ledger;

/// The re-drive itself; `progress` draws a bar on standard error. When
/// `stop` fires, no further record is taken; those in flight are finished
/// (published and confirmed, or failed), their ledger lines written and
/// progress committed, and the summary says it was interrupted.
pub async fn redrive(
    cfg: &Config,
    source: &str,
    args: &RedriveArgs,
    progress: bool,
    mut stop: crate::signal::Signal,
) -> Result<Summary, String> {
    let parts = Parts::build(cfg).map_err(|e| e.to_string())?;
    let (router, metrics) = (parts.router, parts.metrics);
    // The write path exactly as the bridge builds it: topics are made (or
    // checked) before the first write, duplicates detected through the
    // ledger.
    let KafkaClients {
        producer,
        publisher,
        topics,
        dedup,
        transactions,
        ..
    } = KafkaClients::build(cfg, &router, &metrics, &redrive_writer_id(cfg))
        .map_err(|e| e.to_string())?;

    // What is already published: the ledger, read to its end first.
    let (stop_follower, follower_signal) = crate::signal::signal();
    if cfg.dedup.enabled {
        let state = Arc::new(ledger::LedgerState::default());
        follow_ledger(
            cfg,
            &topics,
            &dedup,
            state.clone(),
            &metrics,
            follower_signal,
        );
        let until = tokio::time::Instant::now() + cfg.kafka.admin_timeout * 6;
        while !state.caught_up() {
            if tokio::time::Instant::now() > until {
                return Err(format!(
                    "the duplicates ledger {} could not be read to its end: {}",
                    cfg.dedup.ledger_topic,
                    state.problem().unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else {
        eprintln!(
            "popbill-bridge redrive: warning: dedup.enabled = false: nothing stops a second run from publishing again"
        );
    }

    if let Some(t) = &transactions {
        let until = tokio::time::Instant::now() + cfg.kafka.admin_timeout * 6;
        while let Some(problem) = t.problem() {
            if tokio::time::Instant::now() > until {
                return Err(format!("cannot write transactionally: {problem}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let reader = Reader::open(cfg, source, args, topics.client_context()).await?;
    let total: i64 = reader.ends.values().map(|(start, end)| end - start).sum();
    let mut summary = Summary::default();
    let mut progress_of = Progress::new(&reader.ends);
    let mut last_commit = tokio::time::Instant::now();
    let mut remaining: BTreeMap<i32, i64> = reader
        .ends
        .iter()
        .filter(|(_, (start, end))| start < end)
        .map(|(p, (_, end))| (*p, *end))
        .collect();
    let target = Arc::new(Target {
        router,
        topics,
        dedup: dedup.clone(),
        publisher,
        deadline: cfg.server.request_timeout,
        source: source.to_string(),
        dry_run: args.dry_run,
        would_publish: std::sync::Mutex::default(),
    });
    // Records are re-driven WINDOW at a time (one at a time would wait a
    // round trip each); progress is committed per partition only up to the
    // first record not finished.
    let mut inflight = tokio::task::JoinSet::new();
    let mut stopped = false;
    loop {
        while !stopped
            && inflight.len() < WINDOW
            && !remaining.is_empty()
            && args.limit.is_none_or(|l| summary.looked_at < l)
        {
            let next = tokio::select! {
                biased;
                () = stop.fired() => None,
                m = tokio::time::timeout(cfg.kafka.admin_timeout * 2, reader.consumer.recv()) => Some(m),
            };
            let Some(next) = next else {
                stopped = true;
                summary.interrupted = true;
                break;
            };
            let msg = match next.map_err(|_| format!("no record arrived from {source} in time"))? {
                Ok(m) => m,
                // The end of what a read_committed reader may see: a
                // transaction's last offset is its commit marker, which
                // no consumer ever receives, so the end offset read at
                // start is never reached by a record.
                Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                    remaining.remove(&p);
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            };
            let (partition, offset) = (msg.partition(), msg.offset());
            let Some(&end) = remaining.get(&partition) else {
                continue;
            };
            if offset >= end {
                remaining.remove(&partition);
                continue;
            }
            if offset + 1 >= end {
                remaining.remove(&partition);
            }
            let written = msg
                .timestamp()
                .to_millis()
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64));
            if let (Some(until), Some(at)) = (args.until, written)
                && at >= until
            {
                remaining.remove(&partition);
                continue;
            }
            summary.looked_at += 1;
            let (msg, target) = (msg.detach(), target.clone());
            inflight.spawn(async move {
                let fate = redrive_one(&msg, &target).await;
                (msg.partition(), msg.offset(), fate)
            });
        }
        let Some(joined) = inflight.join_next().await else {
            break;
        };
        let (partition, offset, fate) = joined.map_err(|e| e.to_string())?;
        if matches!(fate, Fate::Failed(_)) {
            // Nothing from here on is committed: the next run starts here.
            stopped = true;
            progress_of.failed(partition, offset);
        } else {
            progress_of.finished(partition, offset);
        }
        *summary.fates.entry(fate).or_default() += 1;
        if progress {
            draw(&summary, total);
        }
        if !args.dry_run && last_commit.elapsed() > Duration::from_secs(1) {
            reader.commit(&progress_of.committable())?;
            last_commit = tokio::time::Instant::now();
        }
    }
    if progress {
        eprintln!();
    }
    if !args.dry_run {
        reader.commit(&progress_of.committable())?;
    }
    if let Some(t) = &transactions {
        t.close(tokio::time::Instant::now() + cfg.server.shutdown_timeout)
            .await;
    }
    dedup.flush_ledger(cfg.server.shutdown_timeout).await;
    stop_follower.fire();
    let flush = producer.clone();
    let _ = tokio::task::spawn_blocking(move || {
        use rdkafka::producer::Producer as _;
        flush.flush(Duration::from_secs(10))
    })
    .await;
    Ok(summary)
}

/// Records re-driven at once.
const WINDOW: usize = 256;

/// The transactional writers' name for a run of `redrive`: its own, so it
/// never fences the bridge's writers; unique to the run (a run that died
/// leaves an open transaction the coordinator aborts at its timeout).
fn redrive_writer_id(cfg: &Config) -> String {
    format!(
        "{}-redrive-{}-{}",
        cfg.kafka.client_id,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    )
}
