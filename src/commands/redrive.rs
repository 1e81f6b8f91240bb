//! `popbill-bridge redrive`: moves deliveries that a new route or a
//! corrected setting now accepts from the fallback (or dead-letter) topic
//! to their routed topic.
//!
//! Two situations need it. POPBiLL starts sending a webhook or event type
//! the configuration does not route yet: its deliveries land on the
//! fallback topic; the operator adds a route, and the events already there
//! should move. Or a bridge upgrade or a corrected limit makes deliveries
//! valid that were dead-lettered.
//!
//! Each record of the source topic is rebuilt into the request it came
//! from (its body and `pb-webhook-*` headers), checked and routed with the
//! current configuration, and — when it now goes somewhere else — published
//! to its routed topic through the same duplicate detection as the webhook:
//! the bridge's ledger is read first, so an event already published (by the
//! bridge, or by an earlier re-drive) is not published again. Re-driven
//! records carry `popbill-bridge-redriven-from: <topic>/<partition>/<offset>`.
//! The rest is left where it is.
//!
//! Progress is committed (consumer group `<kafka.client_id>-redrive-<topic>`)
//! only up to records that are finished — published and confirmed, or
//! left — so an interrupted run is safely run again: it resumes, and what
//! it had published already is recognised as published.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use crate::bridge::{Kafka, Parts, follow_ledger};
use crate::config::Config;
use crate::dedup::identity::Namespace;
use crate::dedup::{Admission, Dedup, ledger};
use crate::delivery::Delivery;
use crate::kafka::client::base_client_config;
use crate::kafka::partitions_of;
use crate::kafka::publish::Publisher;
use crate::kafka::record::{RECEIVED_AT, REDRIVEN_FROM, is_bridge_header};
use crate::kafka::topics::Topics;

#[derive(Debug, clap::Args)]
#[command(
    about = "Move deliveries the current configuration now accepts from the fallback or dead-letter topic to their routed topic.",
    long_about = "Reads the fallback topic (or the dead-letter topic, or any topic the bridge wrote), \
rebuilds each delivery from its record, checks and routes it with the current configuration, and \
publishes those that now go to another topic — through the bridge's duplicate detection, so an event \
already published is not published twice (a re-drive run twice publishes nothing the second time). \
Re-driven records carry popbill-bridge-redriven-from: <topic>/<partition>/<offset>; everything else \
is left where it is.\n\n\
Progress is committed only for finished records (consumer group <kafka.client_id>-redrive-<topic>): \
run it again to resume. Ctrl-C or SIGTERM stops it in order: the records in flight are finished and \
committed, then it exits with status 130 (a second signal stops it at once). The configuration is \
read exactly as for serving (--config, POPBILL_BRIDGE_* variables, --brokers).",
    after_help = "Examples:\n  popbill-bridge redrive --config bridge.toml --dry-run\n  popbill-bridge redrive --config bridge.toml --from dead-letter --since 2025-11-14T00:00:00+09:00 --limit 1000"
)]
pub struct RedriveArgs {
    /// TOML configuration file, as for serving (its routes decide where deliveries go now).
    #[arg(short, long, env = "POPBILL_BRIDGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Kafka bootstrap servers, host:port[,host:port] (overrides kafka.brokers).
    #[arg(long, env = "POPBILL_BRIDGE_BROKERS", value_name = "LIST")]
    pub brokers: Option<String>,

    /// What to read: `fallback` (routes.fallback), `dead-letter` (dead_letter.topic), or a topic name.
    #[arg(long, default_value = "fallback", value_name = "SOURCE")]
    pub from: String,

    /// Only records written at or after this time (RFC 3339, e.g. 2025-11-14T09:00:00+09:00).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<SystemTime>,

    /// Only records written before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<SystemTime>,

    /// Stop after this many records were looked at (re-driven or left).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    /// Print what would be done; publish and commit nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Start from the beginning (or --since), not from where the last run stopped.
    #[arg(long)]
    pub from_start: bool,
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!("{s:?} is not an RFC 3339 time (e.g. 2025-11-14T09:30:00+09:00): {e}")
        })?;
    Ok(SystemTime::from(t))
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// Published (or, dry run: would be) to the topic its route now names.
    Redriven(String),
    /// Already published there (the ledger or this run says so).
    AlreadyPublished,
    /// The configuration still routes it to the source topic.
    StillUnrouted,
    /// It still does not parse; the reason.
    StillInvalid(&'static str),
    /// Kafka did not confirm the write (why); the run stops before it.
    Failed(String),
}

impl Fate {
    fn label(&self) -> String {
        match self {
            Fate::Redriven(t) => format!("re-driven to {t}"),
            Fate::AlreadyPublished => "already published".into(),
            Fate::StillUnrouted => "still unrouted (left)".into(),
            Fate::StillInvalid(r) => format!("still invalid: {r} (left)"),
            Fate::Failed(why) => format!("failed: {why} (run again to resume here)"),
        }
    }
}

/// Counts of a run, by fate.
#[derive(Debug, Default)]
pub struct Summary {
    pub fates: BTreeMap<Fate, u64>,
    pub looked_at: u64,
    /// Stopped by SIGINT or SIGTERM before the end: what was in flight was
    /// finished and its progress committed; run again to resume.
    pub interrupted: bool,
}

impl Summary {
    pub fn count(&self, pred: impl Fn(&Fate) -> bool) -> u64 {
        self.fates
            .iter()
            .filter(|(f, _)| pred(f))
            .map(|(_, n)| n)
            .sum()
    }

    fn table(&self, source: &str, dry_run: bool) -> String {
        let mut out = format!(
            "popbill-bridge redrive: {} record(s) of {source}{}{}\n",
            self.looked_at,
            if dry_run {
                " (dry run: nothing published or committed)"
            } else {
                ""
            },
            if self.interrupted {
                " (interrupted: what was in flight was finished and committed; run again to resume)"
            } else {
                ""
            }
        );
        let width = self
            .fates
            .keys()
            .map(|f| f.label().len())
            .max()
            .unwrap_or(0);
        for (fate, n) in &self.fates {
            out.push_str(&format!("  {:<width$}  {n:>8}\n", fate.label()));
        }
        out
    }
}

pub async fn run(args: RedriveArgs) -> ExitCode {
    let mut cfg = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("popbill-bridge redrive: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(b) = &args.brokers {
        cfg.kafka.brokers = b.clone();
    }
    let source = match args.from.as_str() {
        "fallback" => cfg.routes.fallback.clone(),
        "dead-letter" | "deadletter" => cfg.dead_letter.topic.clone(),
        other => other.to_string(),
    };
    let progress = std::io::stderr().is_terminal();
    // Ctrl-C or SIGTERM: stop taking records, finish those in flight
    // (their writes, ledger lines and progress), then exit 130.
    let (interrupt, interrupted) = crate::signal::signal();
    let on_signal = tokio::spawn(async move {
        crate::signal::stop_requested().await;
        eprintln!(
            "\npopbill-bridge redrive: interrupted: finishing the records in flight and committing progress"
        );
        interrupt.fire();
        // A second signal: stop at once.
        crate::signal::stop_requested().await;
        std::process::exit(130);
    });
    let outcome = redrive(&cfg, &source, &args, progress, interrupted).await;
    on_signal.abort();
    match outcome {
        Ok(summary) => {
            print!("{}", summary.table(&source, args.dry_run));
            if summary.count(|f| matches!(f, Fate::Failed(_))) > 0 {
                ExitCode::FAILURE
            } else if summary.interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("popbill-bridge redrive: {e}");
            ExitCode::from(2)
        }
    }
}

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
    let Kafka {
        producer,
        publisher,
        topics,
        dedup,
        transactions,
        ..
    } = Kafka::build(cfg, &router, &metrics, &redrive_writer_id(cfg)).map_err(|e| e.to_string())?;

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

    let reader = Reader::open(cfg, source, args).await?;
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

/// Where a record can go: the routes, their topics, the duplicate
/// detection and the producer.
struct Target {
    router: crate::route::Router,
    topics: Arc<Topics>,
    dedup: Arc<Dedup>,
    publisher: Publisher,
    /// For one record, as the webhook's `server.request_timeout`.
    deadline: Duration,
    /// The topic read; a record still routed there is left.
    source: String,
    dry_run: bool,
    /// Dry run: the claims this run would publish. Nothing is published,
    /// so the duplicates part does not remember them; this does, so that a
    /// second record of the same event counts as already published, as in
    /// a real run.
    would_publish: std::sync::Mutex<std::collections::HashSet<crate::dedup::Claim>>,
}

/// Per partition, which records are finished, and so up to where progress
/// may be committed: the offset after the last of an unbroken run of
/// finished records. A failed record stops the run for good.
struct Progress {
    /// partition → (next offset to commit, finished offsets beyond it,
    /// a failed offset).
    parts: HashMap<i32, (i64, std::collections::BTreeSet<i64>, Option<i64>)>,
}

impl Progress {
    fn new(ends: &BTreeMap<i32, (i64, i64)>) -> Progress {
        Progress {
            parts: ends
                .iter()
                .map(|(p, (start, _))| (*p, (*start, Default::default(), None)))
                .collect(),
        }
    }

    fn finished(&mut self, partition: i32, offset: i64) {
        if let Some((next, done, failed)) = self.parts.get_mut(&partition) {
            done.insert(offset);
            while failed.is_none_or(|f| *next < f) && done.remove(next) {
                *next += 1;
            }
        }
    }

    fn failed(&mut self, partition: i32, offset: i64) {
        if let Some((_, _, failed)) = self.parts.get_mut(&partition) {
            *failed = Some(failed.map_or(offset, |f| f.min(offset)));
        }
    }

    /// partition → next offset, for the partitions with progress.
    fn committable(&self) -> HashMap<i32, i64> {
        self.parts
            .iter()
            .map(|(p, (next, _, _))| (*p, *next))
            .collect()
    }
}

/// One record: rebuilt, checked, routed, and re-driven when its route
/// changed.
async fn redrive_one(msg: &OwnedMessage, to: &Target) -> Fate {
    let (router, dedup, publisher) = (&to.router, &to.dedup, &to.publisher);
    let (source, dry_run) = (to.source.as_str(), to.dry_run);
    let from = format!("{source}/{}/{}", msg.partition(), msg.offset());
    let headers = request_headers(msg);
    let body = msg.payload().unwrap_or_default();
    let delivery = match Delivery::parse(&headers, body) {
        Ok(d) => d,
        Err(e) => {
            return Fate::StillInvalid(e.reject_reason().map_or("invalid", |r| r.as_str()));
        }
    };
    let route = router.route(delivery.webhook_type, delivery.event_type.as_deref());
    if &*route.topic == source {
        return Fate::StillUnrouted;
    }
    let (id, claim) = dedup.identify(&delivery, Namespace::Routed, &route.topic);
    if dry_run
        && dedup.enabled()
        && !to
            .would_publish
            .lock()
            .map(|mut seen| seen.insert(claim))
            .unwrap_or(true)
    {
        return Fate::AlreadyPublished;
    }
    let lead = match dedup.admit(claim, &id) {
        Admission::Seen => return Fate::AlreadyPublished,
        // The same event, being re-driven from another record right now:
        // published once it is confirmed, and only then.
        Admission::Follow(copies) => {
            return match copies.verdict().await {
                Ok(_) => Fate::AlreadyPublished,
                Err(e) => Fate::Failed(e.to_string()),
            };
        }
        Admission::Lead(lead) => lead,
    };
    if dry_run {
        // Dropping the lead forgets the claim: nothing was published.
        return Fate::Redriven(route.topic.to_string());
    }
    let received_at = received_at(msg);
    let deadline = tokio::time::Instant::now() + to.deadline;
    let line = publisher
        .transactional()
        .then(|| lead.ledger_line(&id, &route.topic))
        .flatten();
    let enqueued = match to.topics.ensure(route, deadline).await {
        Ok(()) => publisher.enqueue(
            &route.topic,
            &delivery,
            &id,
            &headers,
            Some((REDRIVEN_FROM, &from)),
            received_at,
            line.as_deref(),
        ),
        Err(e) => Err(e),
    };
    let pending = match enqueued {
        Ok(p) => p,
        Err(e) => {
            let e = Arc::new(e);
            lead.complete(Err(e.clone()));
            return Fate::Failed(e.to_string());
        }
    };
    match lead
        .confirm(
            pending,
            &id,
            &route.topic,
            std::pin::pin!(tokio::time::sleep_until(deadline)),
        )
        .await
    {
        Ok(_) => Fate::Redriven(route.topic.to_string()),
        Err(e) => Fate::Failed(e.to_string()),
    }
}

/// The request headers a record carries (the bridge forwards every
/// POPBiLL header under its lower-case name); its own `ce_*` and
/// `popbill-bridge-*` headers are not part of the request.
fn request_headers(msg: &OwnedMessage) -> HeaderMap {
    let mut out = HeaderMap::new();
    let Some(hs) = msg.headers() else { return out };
    for h in hs.iter() {
        if is_bridge_header(h.key) {
            continue;
        }
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::from_bytes(h.key.as_bytes()),
            h.value.map(HeaderValue::from_bytes),
        ) {
            out.append(name, value);
        }
    }
    out
}

/// When the bridge first received the delivery: its header, else the
/// record's timestamp, else now.
fn received_at(msg: &OwnedMessage) -> SystemTime {
    let header = msg.headers().and_then(|hs| {
        hs.iter()
            .find(|h| h.key == RECEIVED_AT)
            .and_then(|h| std::str::from_utf8(h.value?).ok())
            .and_then(|v| humantime::parse_rfc3339(v).ok())
    });
    header
        .or_else(|| {
            msg.timestamp()
                .to_millis()
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
        })
        .unwrap_or_else(SystemTime::now)
}

fn draw(summary: &Summary, total: i64) {
    let total = total.max(1) as u64;
    let done = summary.looked_at.min(total);
    let filled = (done * 30 / total) as usize;
    let moved = summary.count(|f| matches!(f, Fate::Redriven(_)));
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r[{}{}] {done}/{total} looked at, {moved} re-driven",
        "#".repeat(filled),
        "-".repeat(30 - filled)
    );
    let _ = err.flush();
}

/// The source topic, assigned partition by partition from where to start
/// to where it ended when the run began.
struct Reader {
    consumer: StreamConsumer,
    topic: String,
    /// partition → (first offset to read, end offset at the start).
    ends: BTreeMap<i32, (i64, i64)>,
}

impl Reader {
    async fn open(cfg: &Config, topic: &str, args: &RedriveArgs) -> Result<Reader, String> {
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
    fn commit(&self, done: &HashMap<i32, i64>) -> Result<(), String> {
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

#[cfg(test)]
mod tests;
