//! The fault-tolerance suite's engine (run it through `scripts/chaos.sh`).
//!
//! Runs two bridge replicas on real Kafka — one broker, or with `--cluster`
//! the three-broker cluster of `scripts/kafka-cluster.sh` — and a
//! POPBiLL-like sender: steady deliveries with unique MIDs, spread over both
//! replicas, each retried on a non-`OK` answer (up to 5 attempts, 5 s apart,
//! alternating replicas, as POPBiLL retries and a Service balances). It
//! injects faults in turn, polls both replicas' `/readyz` all along, then
//! reads every topic back twice and prints a table per fault: once
//! `read_committed`, as consumers read (records of aborted transactions
//! are invisible), and once `read_uncommitted`, everything in the log.
//! Exits 1 if any delivery that was answered `OK` is not visible
//! `read_committed`, if any answer came after the bridge's deadline, or —
//! with the bridge's transactions on — if any event has more than one
//! record visible `read_committed`.

mod faults;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use popbill_bridge::commands::send;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
struct Args {
    /// The popbill-bridge binary.
    #[arg(long)]
    bridge: String,
    /// scripts/kafka.sh, or with --cluster scripts/kafka-cluster.sh (run
    /// with this process's environment, so the caller picks the instance).
    #[arg(long)]
    kafka_script: String,
    /// Bootstrap address(es) of that Kafka.
    #[arg(long)]
    brokers: String,
    /// The three-broker cluster: replication factor 3, min.insync.replicas
    /// 2 (the bridge's defaults), deliveries spread over many keys, and the
    /// cluster faults.
    #[arg(long)]
    cluster: bool,
    /// scripts/netfault.sh (cluster network faults).
    #[arg(long, default_value = "scripts/netfault.sh")]
    netfault_script: String,
    /// A Prometheus server scraping both replicas with the alert rules
    /// loaded (host:port): which alerts were pending or firing per fault.
    #[arg(long)]
    prometheus: Option<SocketAddr>,
    /// The cluster's state directory (node-N/kafka.log): the brokers'
    /// NOT_ENOUGH_REPLICAS refusals are counted in their logs.
    #[arg(long)]
    broker_logs: Option<String>,
    /// Where the replicas' JSON logs go (the causes of 503s are read back).
    #[arg(long, default_value = "/tmp/popbill-chaos-logs")]
    log_dir: String,
    /// Faults to inject, in order. `startup` (first only): the sender
    /// starts as soon as both replicas listen, on a broker just started
    /// afresh, while they create their topics. One broker: 1 Kafka
    /// stopped; 2 Kafka frozen (SIGSTOP); 3 replica SIGKILL + restart; 4
    /// replica SIGTERM + restart; 5 network slowdown (see --cluster).
    /// Cluster: leader-kill, broker-pause, two-down, controller-kill,
    /// latency, stall, reset, bandwidth, loss, partition, rolling.
    #[arg(long, default_value = "1 2 3 4 5")]
    faults: String,
    /// Deliveries per second, over both replicas.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Seconds of steady load before and after each fault.
    #[arg(long, default_value_t = 10)]
    steady: u64,
    /// Seconds Kafka stays stopped in fault 1.
    #[arg(long, default_value_t = 20)]
    stop_seconds: u64,
    /// Seconds Kafka stays frozen in fault 2 (longer than the 5 s deadline).
    #[arg(long, default_value_t = 10)]
    freeze_seconds: u64,
    /// Seconds a killed leader stays down (leader-kill).
    #[arg(long, default_value_t = 20)]
    kill_seconds: u64,
    /// Seconds a broker stays frozen (broker-pause): longer than the
    /// controller's 9 s broker session, so it is fenced and leaves the ISR.
    #[arg(long, default_value_t = 20)]
    pause_seconds: u64,
    /// Seconds two brokers stay down (two-down).
    #[arg(long, default_value_t = 30)]
    down_seconds: u64,
    /// Seconds each network fault lasts (latency, stall, reset, bandwidth).
    #[arg(long, default_value_t = 30)]
    net_seconds: u64,
    /// Seconds the partition between the bridge and the cluster lasts.
    #[arg(long, default_value_t = 30)]
    partition_seconds: u64,
    /// Added to every answer from Kafka (latency), with --jitter-ms.
    #[arg(long, default_value_t = 200)]
    latency_ms: u64,
    #[arg(long, default_value_t = 100)]
    jitter_ms: u64,
    /// reset: every this many ms, every connection that carries data
    /// within --reset-pulse-ms is reset (TCP RST), new ones too.
    #[arg(long, default_value_t = 3000)]
    reset_every_ms: u64,
    #[arg(long, default_value_t = 250)]
    reset_pulse_ms: u64,
    /// Packets dropped at random on the link to the cluster, both ways
    /// (loss), in percent.
    #[arg(long, default_value_t = 10)]
    loss_percent: u32,
    /// The bandwidth cap, both ways (tc tbf rate).
    #[arg(long, default_value = "256kbit")]
    bandwidth: String,
    /// The bridge's deadline (server.request_timeout, its default); an
    /// answer later than this plus --grace-ms is "late".
    #[arg(long, default_value_t = 5000)]
    deadline_ms: u64,
    #[arg(long, default_value_t = 500)]
    grace_ms: u64,
    /// Write every delivery (MID, phase, records in Kafka, partition, and
    /// each attempt as start ms:latency ms:outcome) to this file.
    #[arg(long)]
    dump: Option<String>,
    /// First of four free loopback ports for the two replicas.
    #[arg(long, default_value_t = 28081)]
    base_port: u16,
    /// Instead of the faults: issue #19's reproduction, this many rounds.
    /// Each round starts a fresh broker (the Kafka script's `stop`, which
    /// deletes its data, then `start`), starts both replicas on it, and
    /// has --startup-senders senders post flat out from the moment each
    /// replica listens, for --startup-seconds; then every topic is read
    /// back. Exits 1 if any delivery answered OK is missing.
    #[arg(long, default_value_t = 0)]
    startup_rounds: usize,
    #[arg(long, default_value_t = 16)]
    startup_senders: usize,
    /// Partitions of the topics the replicas create.
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    #[arg(long, default_value_t = 4)]
    startup_seconds: u64,
    /// The bridge's `kafka.transactions.enabled`, given to both replicas
    /// (`--transactions false`: the idempotent producer alone). On, no
    /// event may have two records visible `read_committed`; off, such
    /// duplicates are only counted.
    #[arg(
        long,
        env = "POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ENABLED",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    transactions: bool,
}

const ATTEMPTS: usize = 5;
const RETRY_PAUSE: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Distinct itemKeys (so record keys) in cluster mode: enough to use every
/// partition of a topic.
const KEYS: u64 = 97;

/// How an attempt ended: an HTTP status, or no answer.
const REFUSED: i32 = -1;
const CUT: i32 = -2;
const TIMED_OUT: i32 = -3;

#[derive(Clone, Debug)]
struct Attempt {
    at: Instant,
    latency: Duration,
    /// HTTP status (0: 200 without `OK`), or REFUSED, CUT, TIMED_OUT.
    outcome: i32,
    /// A 503 `commit_pending`: the deadline passed while the commit was in
    /// progress, so the record may yet appear (the one 503 that may be
    /// followed by a visible copy: docs/duplicates.md, "Limits").
    commit_pending: bool,
}

impl Attempt {
    fn ok(&self) -> bool {
        self.outcome == 200
    }
    fn done(&self) -> Instant {
        self.at + self.latency
    }
}

#[derive(Debug)]
struct Sent {
    n: u64,
    mid: String,
    phase: usize,
    attempts: Vec<Attempt>,
    acked: bool,
}

struct Replica {
    webhook: SocketAddr,
    admin: SocketAddr,
    child: Mutex<Option<Child>>,
    /// When its process was started.
    started: Mutex<Instant>,
    /// Set while the driver itself stops this replica (a fault, the end of
    /// a start-up round): the supervisor leaves it down.
    stopping: AtomicBool,
}

impl Replica {
    fn new(webhook: SocketAddr, admin: SocketAddr) -> Self {
        Replica {
            webhook,
            admin,
            child: Mutex::new(None),
            started: Mutex::new(Instant::now()),
            stopping: AtomicBool::new(false),
        }
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A replica that exited by itself and was started again.
struct Restart {
    at: Instant,
    replica: usize,
    status: Option<i32>,
}

struct Bridges {
    args: Args,
    prefix: String,
    replicas: Vec<Replica>,
    restarts: Mutex<Vec<Restart>>,
}

/// A replica that exits sooner than this after its start is started
/// again only this long after its start (Kubernetes' first crash-loop
/// back-off): one that cannot start does not spin.
const CRASH_LOOP: Duration = Duration::from_secs(10);

impl Bridges {
    fn start_replica(&self, i: usize) {
        let child = self.spawn_replica(i);
        *self.replicas[i].child() = Some(child);
        self.started(i);
    }

    fn started(&self, i: usize) {
        let r = &self.replicas[i];
        *r.started.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        r.stopping.store(false, Ordering::Relaxed);
    }

    fn spawn_replica(&self, i: usize) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!(
                "{}/{}-replica-{i}.log",
                self.args.log_dir, self.prefix
            ))
            .expect("replica log file");
        let r = &self.replicas[i];
        let mut cmd = Command::new(&self.args.bridge);
        cmd.args([
            "--brokers",
            &self.args.brokers,
            "--listen",
            &r.webhook.to_string(),
            "--admin-listen",
            &r.admin.to_string(),
            "--log-format",
            "json",
        ])
        .env(
            "POPBILL_BRIDGE_TOPICS__PARTITIONS",
            self.args.partitions.to_string(),
        )
        .env(
            "POPBILL_BRIDGE_ROUTES__TEMPLATE",
            format!("{}.{{type}}.{{event}}", self.prefix),
        )
        .env(
            "POPBILL_BRIDGE_ROUTES__FALLBACK",
            format!("{}.unrouted", self.prefix),
        )
        .env(
            "POPBILL_BRIDGE_DEDUP__LEDGER_TOPIC",
            format!("{}.ledger", self.prefix),
        )
        .env("POPBILL_BRIDGE_KAFKA__HEALTH_INTERVAL", "1s")
        .env("POPBILL_BRIDGE_KAFKA__STATISTICS_INTERVAL", "1s")
        .env("POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY", "2s")
        .env(
            "POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ENABLED",
            self.args.transactions.to_string(),
        )
        // `info`: a line per delivery, with the partition and offset of
        // what was acknowledged (the start-up rounds count them; a
        // duplicate or a missing event is shown with its lines).
        .env("POPBILL_BRIDGE_LOG__LEVEL", "info")
        .stdout(log)
        .stderr(Stdio::inherit());
        if !self.args.cluster {
            // One broker: replication 1. The cluster keeps the bridge's
            // defaults, 3 and min.insync.replicas 2.
            cmd.env("POPBILL_BRIDGE_TOPICS__REPLICATION_FACTOR", "1")
                .env("POPBILL_BRIDGE_TOPICS__SETTINGS__MIN_INSYNC_REPLICAS", "1");
        }
        cmd.spawn().expect("start a bridge replica")
    }

    async fn wait_ready(&self, i: usize, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if get(self.replicas[i].admin, "/readyz").await.map(|r| r.0) == Some(200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Sends `sig` to replica `i`, which the supervisor then leaves down
    /// until [`Bridges::start_replica`].
    fn signal(&self, i: usize, sig: &str) {
        let r = &self.replicas[i];
        r.stopping.store(true, Ordering::Relaxed);
        if let Some(c) = &*r.child() {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    fn reap(&self, i: usize, within: Duration) -> Option<i32> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            let mut child = self.replicas[i].child();
            if let Ok(Some(s)) = child.as_mut()?.try_wait() {
                *child = None;
                return s.code().or(Some(-1));
            }
            drop(child);
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Plays the replicas' supervisor (Kubernetes, systemd): a replica
    /// that exits by itself is started again, at once unless it ran for
    /// less than [`CRASH_LOOP`]. The bridge exits with status 3 on a fatal
    /// Kafka error (a transactional writer in an unknown state, for one) so
    /// as to be restarted with a new producer. Runs until aborted.
    async fn supervise(&self) {
        let mut due: Vec<Option<Instant>> = vec![None; self.replicas.len()];
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for (i, due) in due.iter_mut().enumerate() {
                if due.is_none()
                    && let Some((status, ran)) = self.exited_by_itself(i)
                {
                    let wait = CRASH_LOOP.saturating_sub(ran);
                    eprintln!(
                        "chaos: replica {} exited by itself (status {}) after {} s; starting it again{}, as its supervisor would",
                        ["A", "B"][i],
                        status.map(|c| c.to_string()).unwrap_or("signal".into()),
                        secs(ran),
                        if wait.is_zero() {
                            String::new()
                        } else {
                            format!(" in {} s", secs(wait))
                        }
                    );
                    if let Ok(mut l) = self.restarts.lock() {
                        l.push(Restart {
                            at: Instant::now(),
                            replica: i,
                            status,
                        });
                    }
                    *due = Some(Instant::now() + wait);
                }
                if due.is_some_and(|t| Instant::now() >= t) {
                    *due = None;
                    self.start_if_down(i);
                }
            }
        }
    }

    /// Replica `i`'s process ended without the driver stopping it: its
    /// exit status (None: a signal) and how long it ran.
    fn exited_by_itself(&self, i: usize) -> Option<(Option<i32>, Duration)> {
        let r = &self.replicas[i];
        let mut child = r.child();
        if r.stopping.load(Ordering::Relaxed) {
            return None;
        }
        let status = child.as_mut()?.try_wait().ok()??;
        *child = None;
        let ran = r
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        Some((status.code(), ran))
    }

    /// Starts replica `i` unless the driver started or stopped it since.
    fn start_if_down(&self, i: usize) {
        let r = &self.replicas[i];
        let mut child = r.child();
        if child.is_none() && !r.stopping.load(Ordering::Relaxed) {
            *child = Some(self.spawn_replica(i));
            drop(child);
            self.started(i);
        }
    }

    /// Kills every replica and waits for it: nothing is left listening
    /// when the driver exits, whatever its status.
    fn stop_all(&self) {
        for r in &self.replicas {
            r.stopping.store(true, Ordering::Relaxed);
            if let Some(c) = r.child().as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// The restarts within [from, to], as notes for a fault's details.
    fn restarts_between(&self, from: Instant, to: Instant) -> Vec<String> {
        let l = self.restarts.lock().unwrap_or_else(|e| e.into_inner());
        l.iter()
            .filter(|r| r.at >= from && r.at <= to)
            .map(|r| {
                format!(
                    "replica {} exited by itself (status {}) {} s into the window; the driver started it again",
                    ["A", "B"][r.replica],
                    r.status.map(|c| c.to_string()).unwrap_or("signal".into()),
                    secs(r.at - from)
                )
            })
            .collect()
    }

    /// kafka.sh / kafka-cluster.sh with these arguments; true on success.
    async fn kafka(&self, args: &[&str]) -> bool {
        run_script(&self.args.kafka_script, args).await
    }

    async fn netfault(&self, args: &[&str]) -> bool {
        run_script(&self.args.netfault_script, args).await
    }

    /// Returns once replica `i`'s webhook port accepts connections (within
    /// 60 s): from then on it takes deliveries, ready or not.
    async fn wait_listening(&self, i: usize) -> bool {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if tokio::net::TcpStream::connect(self.replicas[i].webhook)
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    /// Both replicas ready again (each within 90 s).
    async fn both_ready(&self) {
        for i in 0..2 {
            if !self.wait_ready(i, Duration::from_secs(90)).await {
                eprintln!("chaos: replica {i} not ready 90 s after the fault");
            }
        }
    }
}

impl Drop for Bridges {
    fn drop(&mut self) {
        self.stop_all();
    }
}

async fn run_script(script: &str, args: &[&str]) -> bool {
    let ok = tokio::process::Command::new(script)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .await
        .map(|s| s.success())
        .unwrap_or(false);
    eprintln!(
        "chaos:   {} {}: {}",
        script.rsplit('/').next().unwrap_or(script),
        args.join(" "),
        if ok { "ok" } else { "FAILED" }
    );
    ok
}

/// GET over HTTP/1.0 (never chunked): status and body.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&out);
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|b| b.1).unwrap_or("");
    Some((code, body.to_string()))
}

fn body(n: u64, spread: bool) -> String {
    let item = if spread { n % KEYS } else { 1 };
    format!(
        r#"{{"corpNum":"1234567890","itemKey":"02511140930{item:07}","stateCode":300,"stateDT":"20251114093010","eventDT":"20251114093011","eventType":"Issue"}}"#
    )
}

/// One attempt, through the repository's one POPBiLL sender (a connection
/// of its own, POPBiLL's headers and success rule): the status (0 for a 200
/// whose body POPBiLL would not accept), or how it failed to get one.
/// The start of the body of a 503 `commit_pending` (BridgeError::CommitPending).
const COMMIT_PENDING_BODY: &[u8] = b"Kafka transaction still committing at the deadline";

/// One attempt: its outcome (see [`Attempt::outcome`]), and whether it was
/// a 503 `commit_pending`.
async fn post(addr: SocketAddr, mid: &str, body: &str) -> (i32, bool) {
    let url = format!("http://{addr}/popbill/webhook");
    let Ok(sender) = send::Sender::new(
        &url,
        send::SenderOptions {
            timeout: ATTEMPT_TIMEOUT,
            ..send::SenderOptions::default()
        },
    ) else {
        return (REFUSED, false);
    };
    let delivery = send::Delivery {
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Pb-Webhook-Type".into(), "TAXINVOICE.STATE".into()),
            ("Pb-Webhook-MID".into(), mid.into()),
            ("Pb-Webhook-Corpnum".into(), "1234567890".into()),
            ("Pb-Webhook-EventType".into(), "Issue".into()),
        ],
        body: body.to_string().into(),
    };
    let t = sender.try_once(&delivery).await;
    match &t.result {
        Ok(a) if a.status == 200 && !a.accepted() => (0, false),
        Ok(a) => (
            i32::from(a.status),
            a.status == 503 && a.body.starts_with(COMMIT_PENDING_BODY),
        ),
        Err(send::Failure::ConnectionRefused(_)) => (REFUSED, false),
        Err(_) => (CUT, false),
    }
}

/// A POPBiLL-like delivery: retried until `OK`, at most ATTEMPTS times.
async fn deliver(
    targets: [SocketAddr; 2],
    n: u64,
    mid: String,
    phase: usize,
    spread: bool,
    log: Arc<Mutex<Vec<Sent>>>,
    pending: Arc<Vec<AtomicUsize>>,
) {
    let body = body(n, spread);
    let mut attempts = Vec::new();
    let mut acked = false;
    for k in 0..ATTEMPTS {
        let addr = targets[(n as usize + k) % 2];
        let at = Instant::now();
        let (outcome, commit_pending) =
            tokio::time::timeout(ATTEMPT_TIMEOUT, post(addr, &mid, &body))
                .await
                .unwrap_or((TIMED_OUT, false));
        attempts.push(Attempt {
            at,
            latency: at.elapsed(),
            outcome,
            commit_pending,
        });
        if outcome == 200 {
            acked = true;
            break;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    if let Ok(mut l) = log.lock() {
        l.push(Sent {
            n,
            mid,
            phase,
            attempts,
            acked,
        });
    }
    pending[phase].fetch_sub(1, Ordering::Relaxed);
}

fn client(brokers: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("Kafka client")
}

/// A partition: id, leader, replicas, in-sync replicas.
type PartitionState = (i32, i32, usize, usize);

/// The run's topics (all, or without the ledger).
fn run_topics(
    md: &rdkafka::metadata::Metadata,
    prefix: &str,
    ledger: bool,
) -> Vec<(String, Vec<PartitionState>)> {
    md.topics()
        .iter()
        .filter(|t| t.name().starts_with(&format!("{prefix}.")))
        .filter(|t| ledger || !t.name().ends_with(".ledger"))
        .map(|t| {
            (
                t.name().to_string(),
                t.partitions()
                    .iter()
                    .map(|p| (p.id(), p.leader(), p.replicas().len(), p.isr().len()))
                    .collect(),
            )
        })
        .collect()
}

/// The leader of the partition holding the most records of the run.
fn busiest_leader(brokers: &str, prefix: &str) -> Option<(String, i32, i32)> {
    let c = client(brokers, &format!("{prefix}-probe"));
    let md = c.fetch_metadata(None, Duration::from_secs(10)).ok()?;
    let mut best: Option<(i64, String, i32, i32)> = None;
    for (t, parts) in run_topics(&md, prefix, false) {
        for (p, leader, _, _) in parts {
            if let Ok((lo, hi)) = c.fetch_watermarks(&t, p, Duration::from_secs(10))
                && best.as_ref().is_none_or(|b| hi - lo > b.0)
            {
                best = Some((hi - lo, t.clone(), p, leader));
            }
        }
    }
    best.map(|b| (b.1, b.2, b.3))
}

/// Every partition of the run (ledger included) has a leader and all its
/// replicas in sync.
fn fully_replicated(brokers: &str, prefix: &str) -> bool {
    let c = client(brokers, &format!("{prefix}-probe"));
    let Ok(md) = c.fetch_metadata(None, Duration::from_secs(5)) else {
        return false;
    };
    let topics = run_topics(&md, prefix, true);
    !topics.is_empty()
        && topics
            .iter()
            .flat_map(|(_, p)| p.iter())
            .all(|&(_, leader, replicas, isr)| leader >= 0 && isr == replicas)
}

async fn wait_replicated(brokers: &str, prefix: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        let (b, p) = (brokers.to_string(), prefix.to_string());
        if tokio::task::spawn_blocking(move || fully_replicated(&b, &p))
            .await
            .unwrap_or(false)
        {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("chaos: partitions not fully replicated within {within:?}");
    None
}

/// How a verifier reads. `read_committed` sees what consumers see (the
/// docs tell them to set it): records of committed transactions and
/// records written outside any. `read_uncommitted` sees every record in
/// the log, aborted transactions' too.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Isolation {
    Committed,
    Uncommitted,
}

impl Isolation {
    fn level(self) -> &'static str {
        match self {
            Isolation::Committed => "read_committed",
            Isolation::Uncommitted => "read_uncommitted",
        }
    }
}

/// Where one record of an event is.
#[derive(Clone, Debug)]
struct Place {
    topic: String,
    partition: i32,
    offset: i64,
}

/// ce_id → its records, over every delivery topic of the run.
type Records = HashMap<String, Vec<Place>>;

/// Every delivery topic of the run, read back at both isolation levels.
#[derive(Default)]
struct ReadBack {
    committed: Records,
    uncommitted: Records,
}

impl ReadBack {
    fn records(&self, iso: Isolation, mid: &str) -> &[Place] {
        let r = match iso {
            Isolation::Committed => &self.committed,
            Isolation::Uncommitted => &self.uncommitted,
        };
        r.get(mid).map(Vec::as_slice).unwrap_or(&[])
    }

    fn count(&self, iso: Isolation, mid: &str) -> usize {
        self.records(iso, mid).len()
    }

    /// The partition an event landed in (a committed record's first).
    fn partition(&self, mid: &str) -> Option<i32> {
        [Isolation::Committed, Isolation::Uncommitted]
            .iter()
            .find_map(|&iso| self.records(iso, mid).first())
            .map(|p| p.partition)
    }
}

/// A consumer that reads at `iso` and reports each partition's end
/// (read_committed: its last stable offset).
fn verifier(brokers: &str, group: &str, iso: Isolation) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", iso.level())
        .create()
        .expect("Kafka client")
}

/// Partitions of the run's delivery topics whose last stable offset is
/// behind the high watermark (a transaction still open on them), as
/// `topic-partition (LSO x, HW y)`; None when Kafka did not answer.
fn open_transactions(brokers: &str, prefix: &str) -> Option<Vec<String>> {
    let rc = verifier(brokers, &format!("{prefix}-lso"), Isolation::Committed);
    let ru = verifier(brokers, &format!("{prefix}-hw"), Isolation::Uncommitted);
    let md = ru.fetch_metadata(None, Duration::from_secs(10)).ok()?;
    let mut open = Vec::new();
    for (t, parts) in run_topics(&md, prefix, false) {
        for (p, _, _, _) in parts {
            let (_, lso) = rc.fetch_watermarks(&t, p, Duration::from_secs(10)).ok()?;
            let (_, hw) = ru.fetch_watermarks(&t, p, Duration::from_secs(10)).ok()?;
            if lso < hw {
                open.push(format!("{t}-{p} (LSO {lso}, HW {hw})"));
            }
        }
    }
    Some(open)
}

/// Waits until no transaction is open on the run's topics, so that
/// read_committed reads to the end. A replica killed mid-transaction
/// leaves one open until it restarts under the same id or the
/// coordinator aborts it (kafka.transactions.timeout).
fn wait_transactions_settled(brokers: &str, prefix: &str, within: Duration) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < within {
        match open_transactions(brokers, prefix) {
            Some(open) if open.is_empty() => {
                if start.elapsed() > Duration::from_secs(1) {
                    eprintln!(
                        "chaos: verifier: open transactions settled after {} s",
                        secs(start.elapsed())
                    );
                }
                return;
            }
            open => last = open,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "chaos: verifier: transactions still open after {} s, read_committed stops at their LSO: {}",
        secs(within),
        last.map(|o| o.join(", "))
            .unwrap_or("Kafka did not answer".into())
    );
}

fn ce_id(m: &BorrowedMessage<'_>) -> Option<String> {
    m.headers()
        .and_then(|h| h.iter().find(|h| h.key == "ce_id"))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Every delivery topic of the run (not the ledger), from the beginning
/// to its end as of now, at `iso`.
fn read_topics(brokers: &str, prefix: &str, iso: Isolation) -> Records {
    let consumer = verifier(brokers, &format!("{prefix}-verifier-{}", iso.level()), iso);
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .expect("metadata");
    let until = Instant::now() + Duration::from_secs(180);
    let (mut records, mut read, mut unfinished) = (Records::new(), 0usize, Vec::new());
    for (topic, parts) in run_topics(&md, prefix, false) {
        // Empty partitions are at their end already.
        let parts: Vec<i32> = parts
            .iter()
            .map(|p| p.0)
            .filter(|&p| {
                consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(10))
                    .map(|(lo, hi)| hi > lo)
                    .unwrap_or(true)
            })
            .collect();
        if parts.is_empty() {
            continue;
        }
        let (n, left) = read_partitions(&consumer, &topic, &parts, until, &mut records);
        read += n;
        unfinished.extend(left.into_iter().map(|p| format!("{topic}-{p}")));
    }
    eprintln!(
        "chaos: verifier ({}) read {read} records of {} events{}",
        iso.level(),
        records.len(),
        if unfinished.is_empty() {
            String::new()
        } else {
            format!("; NOT to the end: {}", unfinished.join(", "))
        }
    );
    records
}

/// Reads `parts` of `topic` from the beginning until each reports its
/// end, or until `until`: how many records were read, and the partitions
/// not read to the end.
fn read_partitions(
    consumer: &BaseConsumer,
    topic: &str,
    parts: &[i32],
    until: Instant,
    into: &mut Records,
) -> (usize, Vec<i32>) {
    let mut tpl = TopicPartitionList::new();
    for &p in parts {
        let _ = tpl.add_partition_offset(topic, p, Offset::Beginning);
    }
    consumer.assign(&tpl).expect("assign");
    let mut left: BTreeSet<i32> = parts.iter().copied().collect();
    let mut read = 0;
    while !left.is_empty() && Instant::now() < until {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                read += 1;
                if let Some(id) = ce_id(&m) {
                    into.entry(id).or_default().push(Place {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        offset: m.offset(),
                    });
                }
            }
            // One topic at a time: the partition number names it.
            Some(Err(KafkaError::PartitionEOF(p))) => {
                left.remove(&p);
            }
            _ => {}
        }
    }
    let _ = consumer.unassign();
    (read, left.into_iter().collect())
}

/// Every delivery topic of the run read back `read_committed` (once no
/// transaction is open on them) and `read_uncommitted`.
fn read_back(brokers: &str, prefix: &str) -> ReadBack {
    wait_transactions_settled(brokers, prefix, Duration::from_secs(60));
    ReadBack {
        committed: read_topics(brokers, prefix, Isolation::Committed),
        uncommitted: read_topics(brokers, prefix, Isolation::Uncommitted),
    }
}

/// One fault's deliveries against the read-back.
struct Verdict<'a> {
    acked: usize,
    /// Answered `OK`, yet no record visible `read_committed`.
    missing: Vec<&'a Sent>,
    /// More than one record visible `read_committed`: consumers see it
    /// twice, with no `commit_pending` 503 before (must be none).
    dup_committed: Vec<&'a Sent>,
    /// The same after a 503 `commit_pending` (the documented limit).
    dup_after_pending: Vec<&'a Sent>,
    /// More than one record in the log, aborted transactions' included.
    dup_uncommitted: Vec<&'a Sent>,
}

fn verdict<'a>(mine: &[&'a Sent], back: &ReadBack) -> Verdict<'a> {
    let many = |iso| -> Vec<&'a Sent> {
        mine.iter()
            .copied()
            .filter(|s| back.count(iso, &s.mid) > 1)
            .collect()
    };
    let visible = many(Isolation::Committed);
    Verdict {
        acked: mine.iter().filter(|s| s.acked).count(),
        missing: mine
            .iter()
            .copied()
            .filter(|s| s.acked && back.count(Isolation::Committed, &s.mid) == 0)
            .collect(),
        dup_committed: visible
            .iter()
            .copied()
            .filter(|s| !after_pending(s))
            .collect(),
        dup_after_pending: visible.into_iter().filter(|s| after_pending(s)).collect(),
        dup_uncommitted: many(Isolation::Uncommitted),
    }
}

/// Whether an attempt of `s` was answered 503 `commit_pending`.
fn after_pending(s: &Sent) -> bool {
    s.attempts.iter().any(|a| a.commit_pending)
}

/// The per-fault lines on duplicates and aborted records.
fn duplicate_lines(v: &Verdict<'_>, mine: &[&Sent], back: &ReadBack) -> Vec<String> {
    let extra =
        |dups: &[&Sent], iso| -> usize { dups.iter().map(|s| back.count(iso, &s.mid) - 1).sum() };
    let mut lines = Vec::new();
    // Events visible twice read_committed: how many, their extra records,
    // the first few MIDs.
    let visible = |what: &str, dups: &[&Sent]| -> Option<String> {
        let mids: Vec<&str> = dups.iter().take(5).map(|s| s.mid.as_str()).collect();
        (!dups.is_empty()).then(|| {
            format!(
                "{what}: {} events have {} extra records (e.g. {})",
                dups.len(),
                extra(dups, Isolation::Committed),
                mids.join(", ")
            )
        })
    };
    lines.extend(visible(
        "visible duplicates after a 503 commit_pending (the documented limit, not in dup-rc)",
        &v.dup_after_pending,
    ));
    lines.extend(visible(
        "VISIBLE duplicates (read_committed)",
        &v.dup_committed,
    ));
    let dups = &v.dup_uncommitted;
    if !dups.is_empty() {
        // Several records for one attempt: the producer wrote them
        // (retries under a new epoch); otherwise a failed attempt's record
        // landed and the retry published again.
        let by_producer = dups.iter().filter(|s| s.attempts.len() == 1).count();
        lines.push(format!(
            "duplicates in the log (read_uncommitted): {} events have {} extra records; {by_producer} of them were answered OK at the first attempt (the producer wrote the copies), {} were retried after a failed attempt",
            dups.len(),
            extra(dups, Isolation::Uncommitted),
            dups.len() - by_producer
        ));
    }
    // Records in the log that read_committed does not show: aborted.
    let hidden: Vec<(&Sent, usize)> = mine
        .iter()
        .map(|s| {
            let (ru, rc) = (
                back.count(Isolation::Uncommitted, &s.mid),
                back.count(Isolation::Committed, &s.mid),
            );
            (*s, ru.saturating_sub(rc))
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    if !hidden.is_empty() {
        lines.push(format!(
            "aborted: {} records of {} events are in the log but not visible read_committed ({} of those events were never acknowledged)",
            hidden.iter().map(|h| h.1).sum::<usize>(),
            hidden.len(),
            hidden.iter().filter(|h| !h.0.acked).count()
        ));
    }
    lines
}

fn outcome_name(outcome: i32) -> String {
    match outcome {
        200 => "OK".into(),
        0 => "200 without OK".into(),
        REFUSED => "refused".into(),
        CUT => "cut off".into(),
        TIMED_OUT => "no answer".into(),
        status => status.to_string(),
    }
}

/// A delivery the verdict flags, on stderr: its attempts (on which
/// replica, with what answer), where its records are at both isolation
/// levels, and what the replicas logged about it.
fn show_evidence(kind: &str, s: &Sent, back: &ReadBack, logs: &mut ReplicaLogs) {
    let t0 = s.attempts.first().map(|a| a.at);
    let attempts: Vec<String> = s
        .attempts
        .iter()
        .enumerate()
        .map(|(k, a)| {
            format!(
                "+{} ms to {}: {} after {} ms",
                t0.map(|t| (a.at - t).as_millis()).unwrap_or(0),
                ["A", "B"][(s.n as usize + k) % 2],
                outcome_name(a.outcome),
                a.latency.as_millis()
            )
        })
        .collect();
    let places = |iso| -> String {
        let r: Vec<String> = back
            .records(iso, &s.mid)
            .iter()
            .map(|p| format!("{}-{}@{}", p.topic, p.partition, p.offset))
            .collect();
        if r.is_empty() {
            "none".into()
        } else {
            r.join(" ")
        }
    };
    eprintln!("chaos: {kind}: {}", s.mid);
    eprintln!("chaos:   attempts: {}", attempts.join("; "));
    eprintln!(
        "chaos:   records read_committed: {}; read_uncommitted: {}",
        places(Isolation::Committed),
        places(Isolation::Uncommitted)
    );
    for line in logs.about(&s.mid) {
        eprintln!("chaos:   {line}");
    }
}

/// The replicas' JSON logs, read once, when evidence is first shown.
struct ReplicaLogs {
    dir: String,
    prefix: String,
    lines: Option<Vec<Vec<String>>>,
}

impl ReplicaLogs {
    fn new(dir: &str, prefix: &str) -> Self {
        ReplicaLogs {
            dir: dir.to_string(),
            prefix: prefix.to_string(),
            lines: None,
        }
    }

    /// Lines naming `mid`, each followed by that replica's other warnings
    /// and errors within 1 s of it (at most 8), as `A| line`.
    fn about(&mut self, mid: &str) -> Vec<String> {
        let (dir, prefix) = (&self.dir, &self.prefix);
        let lines = self.lines.get_or_insert_with(|| {
            (0..2)
                .map(|i| {
                    std::fs::read_to_string(format!("{dir}/{prefix}-replica-{i}.log"))
                        .map(|t| t.lines().map(String::from).collect())
                        .unwrap_or_default()
                })
                .collect()
        });
        let quoted = format!("\"{mid}\"");
        let mut out = Vec::new();
        for (i, replica) in lines.iter().enumerate() {
            let tag = ["A", "B"][i];
            for line in replica.iter().filter(|l| l.contains(&quoted)) {
                out.push(format!("{tag}| {line}"));
                let Some(at) = log_time(line) else { continue };
                let near = replica
                    .iter()
                    .filter(|l| {
                        (l.contains("\"WARN\"") || l.contains("\"ERROR\""))
                            && !l.contains("popbill_bridge::delivery")
                    })
                    .filter(|l| {
                        log_time(l).is_some_and(|t| {
                            t.duration_since(at)
                                .or_else(|_| at.duration_since(t))
                                .is_ok_and(|d| d <= Duration::from_secs(1))
                        })
                    })
                    .take(8);
                out.extend(near.map(|l| format!("{tag}|   near: {l}")));
            }
        }
        out
    }
}

/// A JSON log line's timestamp.
fn log_time(line: &str) -> Option<SystemTime> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    humantime::parse_rfc3339_weak(v["timestamp"].as_str()?.trim_end_matches('Z')).ok()
}

/// Sum of a metric's samples over both replicas, by one label's value.
fn metric_by(text: &str, name: &str, label: &str, into: &mut BTreeMap<String, f64>) {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let key = labels
            .split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{label}=\"")))
            .map(|v| v.trim_end_matches('"').to_string())
            .unwrap_or_default();
        *into.entry(key).or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
    }
}

async fn failures_by_reason(replicas: &[SocketAddr]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for a in replicas {
        if let Some((200, text)) = get(*a, "/metrics").await {
            metric_by(
                &text,
                "popbill_bridge_publish_failures_total",
                "reason",
                &mut m,
            );
            // 503 without a publish: the in-flight cap.
            let mut r = BTreeMap::new();
            metric_by(&text, "popbill_bridge_rejections_total", "reason", &mut r);
            *m.entry("overloaded".into()).or_insert(0.0) +=
                r.get("overloaded").copied().unwrap_or(0.0);
        }
    }
    m
}

/// Appends the brokers refused with NOT_ENOUGH_REPLICAS so far (their
/// logs are kept across restarts).
fn not_enough_replicas(dir: Option<&str>) -> usize {
    let Some(dir) = dir else { return 0 };
    (1..=3)
        .map(|n| {
            std::fs::read_to_string(format!("{dir}/node-{n}/kafka.log"))
                .map(|t| t.matches("NotEnoughReplicasException: ").count())
                .unwrap_or(0)
        })
        .sum()
}

/// One /readyz answer.
struct Ready {
    at: Instant,
    replica: usize,
    ok: bool,
    why: String,
}

/// One fault's window: load before, the fault, recovery, load after.
struct Window {
    phase: usize,
    name: String,
    start: Instant,
    fault_start: Instant,
    fault_end: Instant,
    end: Instant,
    wall_fault_start: SystemTime,
    wall_end: SystemTime,
    notes: Vec<String>,
    failures: BTreeMap<String, f64>,
    not_enough_replicas: usize,
}

fn secs(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Longest stretch of [from, to] without an `OK` among these answer times.
fn longest_gap(mut oks: Vec<Instant>, from: Instant, to: Instant) -> Duration {
    oks.retain(|t| *t >= from && *t <= to);
    oks.sort();
    let mut last = from;
    let mut gap = Duration::ZERO;
    for t in oks.into_iter().chain(std::iter::once(to)) {
        gap = gap.max(t - last);
        last = t;
    }
    gap
}

/// From the fault's end until attempts succeed again: the first attempt
/// from which every attempt started within the next 3 s is `OK`.
fn recovery(attempts: &[&Attempt], fault_end: Instant, end: Instant) -> Option<Duration> {
    let mut after: Vec<&&Attempt> = attempts.iter().filter(|a| a.at >= fault_end).collect();
    after.sort_by_key(|a| a.at);
    let hold = Duration::from_secs(3);
    for (i, a) in after.iter().enumerate() {
        if a.at + hold > end {
            break;
        }
        if after[i..]
            .iter()
            .take_while(|b| b.at <= a.at + hold)
            .all(|b| b.ok())
        {
            return Some(a.at - fault_end);
        }
    }
    None
}

/// Causes of the 503s in the replicas' logs, within [from, to].
fn failure_causes(
    dir: &str,
    prefix: &str,
    from: SystemTime,
    to: SystemTime,
) -> BTreeMap<String, usize> {
    let mut causes = BTreeMap::new();
    for i in 0..2 {
        let Ok(text) = std::fs::read_to_string(format!("{dir}/{prefix}-replica-{i}.log")) else {
            continue;
        };
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let message = v["message"].as_str().unwrap_or("");
            let event = if message.contains("REQTMOUT") {
                Some("producer request timeouts (REQTMOUT)")
            } else if message.contains("duplicates ledger") && v["level"] == "WARN" {
                Some("ledger write/read warnings")
            } else {
                None
            };
            if v["outcome"] != "failed" && event.is_none() {
                continue;
            }
            let Some(at) = v["timestamp"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
            else {
                continue;
            };
            if at < from || at > to {
                continue;
            }
            if let Some(e) = event {
                *causes.entry(format!("[{e}]")).or_insert(0) += 1;
                continue;
            }
            let cause = v["cause"].as_str().filter(|c| !c.is_empty());
            let error = v["error"].as_str().unwrap_or("?");
            let short = match cause {
                Some(c) if c.contains("NotEnoughReplicas") => "NOT_ENOUGH_REPLICAS".to_string(),
                Some(c) if c.contains("timed out") => "timed out".to_string(),
                Some(c) => c.chars().take(48).collect(),
                None => error.chars().take(48).collect(),
            };
            *causes.entry(short).or_insert(0) += 1;
        }
    }
    causes
}

/// ALERTS over [from, to] from Prometheus: alert → (seconds pending,
/// seconds firing, already active at `from`), at a 1 s step.
async fn alerts(
    prom: SocketAddr,
    from: SystemTime,
    to: SystemTime,
) -> BTreeMap<String, (u32, u32, bool)> {
    let mut out = BTreeMap::new();
    let path = format!(
        "/api/v1/query_range?query=ALERTS&start={:.3}&end={:.3}&step=1",
        unix(from),
        unix(to)
    );
    let Some((200, body)) = get(prom, &path).await else {
        eprintln!("chaos: Prometheus did not answer {path}");
        return out;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return out;
    };
    for series in v["data"]["result"].as_array().into_iter().flatten() {
        let name = series["metric"]["alertname"].as_str().unwrap_or("?");
        let state = series["metric"]["alertstate"].as_str().unwrap_or("?");
        let values = series["values"].as_array();
        let n = values.map(|a| a.len()).unwrap_or(0) as u32;
        let first = values
            .and_then(|a| a.first())
            .and_then(|v| v[0].as_f64())
            .unwrap_or(f64::MAX);
        let e = out.entry(name.to_string()).or_insert((0, 0, false));
        e.2 |= first <= unix(from) + 1.5;
        // Two replicas may each hold the same alert: count seconds once.
        if state == "firing" {
            e.1 = e.1.max(n);
        } else {
            e.0 = e.0.max(n);
        }
    }
    out
}

/// `--dump`: a line per delivery: MID, phase, records visible
/// read_committed, records read_uncommitted, partition (-1: none), and
/// each attempt as start ms:latency ms:outcome.
fn write_dump(path: &str, log: &[Sent], back: &ReadBack) {
    let t0 = log
        .iter()
        .filter_map(|s| s.attempts.first())
        .map(|a| a.at)
        .min();
    let mut out = String::new();
    for s in log {
        let attempts: Vec<String> = s
            .attempts
            .iter()
            .map(|a| {
                format!(
                    "{}:{}:{}",
                    t0.map(|t| (a.at - t).as_millis()).unwrap_or(0),
                    a.latency.as_millis(),
                    a.outcome
                )
            })
            .collect();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            s.mid,
            s.phase,
            back.count(Isolation::Committed, &s.mid),
            back.count(Isolation::Uncommitted, &s.mid),
            back.partition(&s.mid).unwrap_or(-1),
            attempts.join(",")
        ));
    }
    if let Err(e) = std::fs::write(path, out) {
        eprintln!("chaos: cannot write {path}: {e}");
    }
}

/// Issue #19's reproduction (`--startup-rounds`): rounds of a fresh
/// broker, both replicas started on it, and senders posting flat out from
/// the moment the replicas listen. Prints a row per round and the totals;
/// returns how many deliveries answered `OK` are missing from Kafka.
async fn startup_rounds(bridges: &mut Bridges, rounds: usize, base: &str) -> usize {
    let (senders, seconds) = (bridges.args.startup_senders, bridges.args.startup_seconds);
    println!(
        "# popbill-bridge start-up rounds: a fresh broker each round, 2 replicas, {senders} senders flat out for {seconds} s from the moment the replicas listen"
    );
    println!(
        "# missing: answered OK but not in Kafka (must be 0); ok@-1001: acknowledged lines with offset -1001 in the replicas' logs (librdkafka's implicit acknowledgement, trusted); unconfirmed: reports without an offset the bridge refused (answered 503)"
    );
    println!(
        "{:>5} {:>7} {:>7} {:>7} {:>8} {:>11} {:>6}",
        "round", "sent", "acked", "missing", "ok@-1001", "unconfirmed", "503s"
    );
    let mut totals = [0usize; 6];
    let mut rounds_with_loss = 0;
    for round in 1..=rounds {
        bridges.prefix = format!("{base}-r{round}");
        // A fresh broker: stop deletes its data.
        if !bridges.kafka(&["stop"]).await || !bridges.kafka(&["start"]).await {
            eprintln!("chaos: round {round}: the broker did not start; stopping");
            break;
        }
        bridges.start_replica(0);
        bridges.start_replica(1);
        let targets = [bridges.replicas[0].webhook, bridges.replicas[1].webhook];
        for i in 0..2 {
            assert!(
                bridges.wait_listening(i).await,
                "replica {i} never listened"
            );
        }
        let until = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for sender in 0..senders {
            let prefix = bridges.prefix.clone();
            tasks.push(tokio::spawn(async move {
                let (mut sent, mut acked, mut refused) = (0usize, Vec::new(), 0usize);
                let mut n = 0u64;
                while Instant::now() < until {
                    n += 1;
                    let mid = format!("{prefix}-{sender}-{n}");
                    let (outcome, _) = post(
                        targets[sender % 2],
                        &mid,
                        &body(n + sender as u64 * 31, true),
                    )
                    .await;
                    sent += 1;
                    match outcome {
                        200 => acked.push(mid),
                        503 => refused += 1,
                        _ => {}
                    }
                }
                (sent, acked, refused)
            }));
        }
        let (mut sent, mut acked, mut refused) = (0, Vec::new(), 0);
        for t in tasks {
            if let Ok((s, a, r)) = t.await {
                sent += s;
                acked.extend(a);
                refused += r;
            }
        }
        let mut unconfirmed = BTreeMap::new();
        for r in &bridges.replicas {
            if let Some((200, text)) = get(r.admin, "/metrics").await {
                metric_by(
                    &text,
                    "popbill_bridge_kafka_unconfirmed_reports_total",
                    "writer",
                    &mut unconfirmed,
                );
            }
        }
        let unconfirmed = unconfirmed.get("delivery").copied().unwrap_or(0.0) as usize;
        for i in 0..2 {
            bridges.signal(i, "-KILL");
            let _ = bridges.reap(i, Duration::from_secs(5));
        }
        let (brokers, prefix) = (bridges.args.brokers.clone(), bridges.prefix.clone());
        let back = tokio::task::spawn_blocking(move || read_back(&brokers, &prefix))
            .await
            .unwrap_or_default();
        let missing = acked
            .iter()
            .filter(|m| back.count(Isolation::Committed, m) == 0)
            .count();
        let implicit = implicit_acks(&bridges.args.log_dir, &bridges.prefix);
        if missing > 0 {
            rounds_with_loss += 1;
        }
        println!(
            "{round:>5} {sent:>7} {:>7} {missing:>7} {implicit:>8} {unconfirmed:>11} {refused:>6}",
            acked.len()
        );
        for (t, v) in
            totals
                .iter_mut()
                .zip([sent, acked.len(), missing, implicit, unconfirmed, refused])
        {
            *t += v;
        }
    }
    println!(
        "{:>5} {:>7} {:>7} {:>7} {:>8} {:>11} {:>6}",
        "all", totals[0], totals[1], totals[2], totals[3], totals[4], totals[5]
    );
    println!("rounds with an acknowledged delivery missing: {rounds_with_loss} of {rounds}");
    totals[2]
}

/// Lines of this run's replica logs that acknowledged a delivery at
/// offset -1001: a report without an offset taken as proof.
fn implicit_acks(log_dir: &str, prefix: &str) -> usize {
    (0..2)
        .filter_map(|i| std::fs::read_to_string(format!("{log_dir}/{prefix}-replica-{i}.log")).ok())
        .map(|text| {
            text.lines()
                .filter(|l| l.contains("delivery acknowledged") && l.contains("\"offset\":-1001"))
                .count()
        })
        .sum()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let prefix = format!(
        "chaos-{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    std::fs::create_dir_all(&args.log_dir).expect("log directory");
    let port = args.base_port;
    let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let replicas = vec![
        Replica::new(addr(port), addr(port + 1)),
        Replica::new(addr(port + 2), addr(port + 3)),
    ];
    let faults: Vec<String> = args.faults.split_whitespace().map(String::from).collect();
    let (rate, steady, spread) = (args.rate, Duration::from_secs(args.steady), args.cluster);
    let deadline = Duration::from_millis(args.deadline_ms + args.grace_ms);
    let rounds = args.startup_rounds;
    let mut bridges = Bridges {
        args,
        prefix: prefix.clone(),
        replicas,
        restarts: Mutex::new(Vec::new()),
    };
    if rounds > 0 {
        let missing = startup_rounds(&mut bridges, rounds, &prefix).await;
        bridges.stop_all();
        std::process::exit(i32::from(missing > 0));
    }
    let bridges = Arc::new(bridges);
    bridges.start_replica(0);
    bridges.start_replica(1);
    let supervisor = {
        let b = bridges.clone();
        tokio::spawn(async move { b.supervise().await })
    };
    // `startup` first: the sender starts as soon as the replicas listen,
    // on a broker chaos.sh has just started afresh, while they create
    // their topics; readiness is waited for in the fault's window.
    let startup_first = faults.first().map(String::as_str) == Some("startup");
    for i in 0..2 {
        let up = if startup_first {
            bridges.wait_listening(i).await
        } else {
            bridges.wait_ready(i, Duration::from_secs(90)).await
        };
        assert!(up, "replica {i} never became ready (or never listened)");
    }
    let targets = [bridges.replicas[0].webhook, bridges.replicas[1].webhook];
    let admins = [bridges.replicas[0].admin, bridges.replicas[1].admin];

    // /readyz of both replicas, twice a second, all along.
    let readiness: Arc<Mutex<Vec<Ready>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (readiness, stop) = (readiness.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                for (replica, a) in admins.iter().enumerate() {
                    let at = Instant::now();
                    let r = get(*a, "/readyz").await;
                    let (ok, why) = match r {
                        Some((200, _)) => (true, String::new()),
                        Some((_, b)) => (
                            false,
                            b.trim().trim_start_matches("not ready: ").to_string(),
                        ),
                        None => (false, "no answer".to_string()),
                    };
                    if let Ok(mut l) = readiness.lock() {
                        l.push(Ready {
                            at,
                            replica,
                            ok,
                            why,
                        });
                    }
                }
            }
        })
    };

    // The sender: `rate` deliveries a second until told to stop; `phase`
    // says which fault window a delivery was first sent in.
    let log: Arc<Mutex<Vec<Sent>>> = Arc::new(Mutex::new(Vec::new()));
    let phase = Arc::new(AtomicUsize::new(0));
    // Deliveries of each phase still being retried.
    let pending: Arc<Vec<AtomicUsize>> =
        Arc::new((0..=faults.len()).map(|_| AtomicUsize::new(0)).collect());
    let sender = {
        let (log, phase, stop, prefix, pending) = (
            log.clone(),
            phase.clone(),
            stop.clone(),
            prefix.clone(),
            pending.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
            let mut n = 0u64;
            let mut tasks = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let p = phase.load(Ordering::Relaxed);
                pending[p].fetch_add(1, Ordering::Relaxed);
                tasks.push(tokio::spawn(deliver(
                    targets,
                    n,
                    format!("{prefix}-{n}"),
                    p,
                    spread,
                    log.clone(),
                    pending.clone(),
                )));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };

    let brokers = bridges.args.brokers.clone();
    let mut windows: Vec<Window> = Vec::new();
    let mut next_start = Instant::now();
    for (i, f) in faults.iter().enumerate() {
        phase.store(i, Ordering::Relaxed);
        let start = next_start;
        tokio::time::sleep(steady).await;
        let before = failures_by_reason(&admins).await;
        let ner_before = not_enough_replicas(bridges.args.broker_logs.as_deref());
        let (fault_start, wall_fault_start) = (Instant::now(), SystemTime::now());
        let mut notes = Vec::new();
        let Some(name) = faults::inject(f, &bridges, &prefix, &mut notes).await else {
            continue;
        };
        let fault_end = Instant::now();
        bridges.both_ready().await;
        if bridges.args.cluster
            && let Some(d) = wait_replicated(&brokers, &prefix, Duration::from_secs(180)).await
        {
            notes.push(format!(
                "all partitions back in sync {} s after the fault ended",
                secs(d)
            ));
        }
        tokio::time::sleep(steady).await;
        let after = failures_by_reason(&admins).await;
        let failures = after
            .iter()
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
            .filter(|(_, v)| *v > 0.0)
            .collect();
        let end = Instant::now();
        notes.extend(bridges.restarts_between(start, end));
        windows.push(Window {
            phase: i,
            name,
            start,
            fault_start,
            fault_end,
            end,
            wall_fault_start,
            wall_end: SystemTime::now(),
            notes,
            failures,
            not_enough_replicas: not_enough_replicas(bridges.args.broker_logs.as_deref())
                .saturating_sub(ner_before),
        });
        // The next window starts now, but its fault only once every
        // delivery of this one has ended (acknowledged or given up), so a
        // retry never lands in the next fault.
        phase.store(i + 1, Ordering::Relaxed);
        next_start = end;
        let until = Instant::now() + Duration::from_secs(60);
        while pending[i].load(Ordering::Relaxed) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let stopped_at = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let _ = sender.await;
    let _ = poller.await;
    supervisor.abort();
    let _ = supervisor.await;

    let (b, p) = (brokers.clone(), prefix.clone());
    let back = tokio::task::spawn_blocking(move || read_back(&b, &p))
        .await
        .unwrap_or_default();
    let log = std::mem::take(&mut *log.lock().expect("log"));
    if let Some(path) = &bridges.args.dump {
        write_dump(path, &log, &back);
    }
    let readiness = std::mem::take(&mut *readiness.lock().expect("readiness"));

    // Which partition each key lands in (from the records that landed).
    let mut key_partition: HashMap<u64, i32> = HashMap::new();
    for s in &log {
        if let Some(part) = back.partition(&s.mid) {
            key_partition.insert(if spread { s.n % KEYS } else { 1 }, part);
        }
    }

    println!(
        "# popbill-bridge chaos: run {prefix}, {} Kafka, {rate} deliveries/s over 2 replicas, POPBiLL-like retries ({ATTEMPTS} attempts, {} s apart), transactions {}",
        if spread { "3-broker" } else { "1-broker" },
        RETRY_PAUSE.as_secs(),
        if bridges.args.transactions {
            "on"
        } else {
            "off"
        }
    );
    println!(
        "{:<28} | {:>5} {:>5} {:>7} {:>6} {:>6} {:>5} | {:>4} {:>5} {:>5} {:>6} | {:>7} {:>7} {:>8}",
        "fault",
        "sent",
        "acked",
        "missing",
        "dup-rc",
        "dup-ru",
        "never",
        "late",
        "503s",
        "no-ans",
        "max ms",
        "gap s",
        "gap-p s",
        "recov s"
    );
    let mut missing_total = 0;
    let mut late_total = 0;
    let mut visible_dups_total = 0;
    // Deliveries to show with their evidence, after the table.
    let mut flagged: Vec<(String, &Sent)> = Vec::new();
    let mut details = Vec::new();
    for (k, w) in windows.iter().enumerate() {
        // Recovery is looked for until the next fault (or the end of the run).
        let calm_until = windows
            .get(k + 1)
            .map(|n| n.fault_start)
            .unwrap_or(stopped_at);
        let mine: Vec<&Sent> = log.iter().filter(|s| s.phase == w.phase).collect();
        let v = verdict(&mine, &back);
        missing_total += v.missing.len();
        visible_dups_total += v.dup_committed.len();
        for s in v.missing.iter().take(5) {
            flagged.push((
                "MISSING (acknowledged, not visible read_committed)".into(),
                s,
            ));
        }
        for s in v.dup_committed.iter().take(5) {
            flagged.push(("DUPLICATE visible read_committed".into(), s));
        }
        let never = mine.len() - v.acked;
        // Every attempt made in the window, whichever delivery it belongs to.
        let during: Vec<(&Sent, &Attempt)> = log
            .iter()
            .flat_map(|s| s.attempts.iter().map(move |a| (s, a)))
            .filter(|(_, a)| a.at >= w.start && a.at <= w.end)
            .collect();
        let shed = during.iter().filter(|(_, a)| a.outcome == 503).count();
        let unanswered = during.iter().filter(|(_, a)| a.outcome < 0).count();
        let late_ones: Vec<&(&Sent, &Attempt)> = during
            .iter()
            .filter(|(_, a)| a.outcome == TIMED_OUT || (a.outcome >= 0 && a.latency > deadline))
            .collect();
        let late = late_ones.len();
        late_total += late;
        for (s, a) in late_ones.iter().take(5) {
            let kind = format!(
                "LATE answer ({} after {} ms)",
                outcome_name(a.outcome),
                a.latency.as_millis()
            );
            flagged.push((kind, s));
        }
        let max = during
            .iter()
            .map(|(_, a)| a.latency)
            .max()
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0);
        let oks: Vec<Instant> = during
            .iter()
            .filter(|(_, a)| a.ok())
            .map(|(_, a)| a.done())
            .collect();
        let gap = longest_gap(oks, w.fault_start, w.end);
        let mut by_part: HashMap<i32, Vec<Instant>> = HashMap::new();
        for (s, a) in &during {
            let k = if spread { s.n % KEYS } else { 1 };
            let part = key_partition.get(&k).copied().unwrap_or(-1);
            let e = by_part.entry(part).or_default();
            if a.ok() {
                e.push(a.done());
            }
        }
        let gap_p = by_part
            .into_values()
            .map(|oks| longest_gap(oks, w.fault_start, w.end))
            .max()
            .unwrap_or_default();
        let attempts: Vec<&Attempt> = log
            .iter()
            .flat_map(|s| s.attempts.iter())
            .filter(|a| a.at >= w.fault_end && a.at <= calm_until)
            .collect();
        let rec = recovery(&attempts, w.fault_end, calm_until)
            .map(secs)
            .unwrap_or("-".into());
        println!(
            "{:<28} | {:>5} {:>5} {:>7} {:>6} {:>6} {:>5} | {:>4} {:>5} {:>5} {:>6.0} | {:>7} {:>7} {:>8}",
            w.name,
            mine.len(),
            v.acked,
            v.missing.len(),
            v.dup_committed.len(),
            v.dup_uncommitted.len(),
            never,
            late,
            shed,
            unanswered,
            max,
            secs(gap),
            secs(gap_p),
            rec
        );

        // Readiness while the fault lasted and until both were ready again.
        let mut ready = Vec::new();
        for r in 0..2 {
            let polls: Vec<&Ready> = readiness
                .iter()
                .filter(|p| p.replica == r && p.at >= w.fault_start && p.at <= w.end)
                .collect();
            let not: Vec<&&Ready> = polls.iter().filter(|p| !p.ok).collect();
            let mut why: Vec<&str> = not.iter().map(|p| p.why.as_str()).collect();
            why.sort();
            why.dedup();
            ready.push(if not.is_empty() {
                format!("{}: ready throughout", ["A", "B"][r])
            } else {
                format!(
                    "{}: not ready {:.1} s ({})",
                    ["A", "B"][r],
                    not.len() as f64 * 0.5,
                    why.join(" | ")
                )
            });
        }
        // Attempts started 1 s after both brokers were gone and answered
        // before they were started again: none may be OK but copies of
        // events already in Kafka.
        let mut twodown = String::new();
        if w.name.starts_with("2 brokers") {
            let down = Duration::from_secs(bridges.args.down_seconds);
            let from = w.fault_start + Duration::from_secs(1);
            let to = w.fault_start + down;
            let oks = during
                .iter()
                .filter(|(_, a)| a.at >= from && a.done() <= to && a.ok())
                .count();
            let fails = during
                .iter()
                .filter(|(_, a)| a.at >= from && a.done() <= to && !a.ok())
                .count();
            twodown = format!(
                "while one broker ran: {oks} OK (copies of events already in Kafka), {fails} not OK"
            );
        }
        details.push((w, ready, twodown, duplicate_lines(&v, &mine, &back)));
    }
    println!(
        "# missing: answered OK but no record visible read_committed (must be 0); dup-rc: events with more than one record visible read_committed, as consumers see them, apart from those after a 503 commit_pending, listed per fault (must be 0 with transactions on); dup-ru: the same read_uncommitted, aborted records included (for information); late: answered more than {} ms after the request, or not within {} s (must be 0)",
        bridges.args.deadline_ms + bridges.args.grace_ms,
        ATTEMPT_TIMEOUT.as_secs()
    );
    let mut logs = ReplicaLogs::new(&bridges.args.log_dir, &prefix);
    for (kind, s) in &flagged {
        show_evidence(kind, s, &back, &mut logs);
    }

    println!("\n# per fault: readiness, the 503s' reasons, alerts");
    for (w, ready, twodown, duplines) in details {
        println!("## {}", w.name);
        println!(
            "  fault {} s (from {} s into the window); /readyz: {}",
            secs(w.fault_end - w.fault_start),
            secs(w.fault_start - w.start),
            ready.join("; ")
        );
        let fails: Vec<String> = w
            .failures
            .iter()
            .map(|(k, v)| format!("{k} {v:.0}"))
            .collect();
        let causes = failure_causes(
            &bridges.args.log_dir,
            &prefix,
            w.wall_fault_start,
            w.wall_end,
        );
        let causes: Vec<String> = causes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "  503s by reason: {}; causes logged: {}",
            if fails.is_empty() {
                "none".into()
            } else {
                fails.join(", ")
            },
            if causes.is_empty() {
                "none".into()
            } else {
                causes.join(", ")
            }
        );
        if !twodown.is_empty() {
            println!("  {twodown}");
        }
        for d in duplines {
            println!("  {d}");
        }
        if w.not_enough_replicas > 0 {
            println!(
                "  brokers refused {} appends with NOT_ENOUGH_REPLICAS (librdkafka retries those until message.timeout.ms, so the bridge reports a timeout)",
                w.not_enough_replicas
            );
        }
        for n in &w.notes {
            println!("  {n}");
        }
        if let Some(prom) = bridges.args.prometheus {
            let a = alerts(prom, w.wall_fault_start, w.wall_end).await;
            let list: Vec<String> = a
                .iter()
                .map(|(k, (p, f, earlier))| {
                    let k = k.trim_start_matches("PopbillBridge");
                    let state = match (p, f) {
                        (_, 0) => format!("{k} pending {p} s"),
                        (0, _) => format!("{k} FIRING {f} s"),
                        _ => format!("{k} pending {p} s, FIRING {f} s"),
                    };
                    if *earlier {
                        format!("({state}, active before the fault)")
                    } else {
                        state
                    }
                })
                .collect();
            println!(
                "  alerts (Prometheus, deploy/prometheus/alerts.yaml): {}",
                if list.is_empty() {
                    "none".into()
                } else {
                    list.join("; ")
                }
            );
        }
    }
    let visible_dups_fail = bridges.args.transactions && visible_dups_total > 0;
    if missing_total > 0 || late_total > 0 || visible_dups_fail {
        // exit() skips Drop: the replicas would outlive the driver.
        bridges.stop_all();
        std::process::exit(1);
    }
}
