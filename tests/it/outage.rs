//! Kafka down during the first copy: the copy gets 503, Kafka comes back,
//! POPBiLL's retry is published — exactly one record. And what the log and
//! readiness say about Kafka: librdkafka's errors while it is unreachable
//! (once, then summaries), and topic settings that break a promise.
//!
//! The first test stops and restarts the shared broker, so it holds the
//! broker alone ([`kafka_sh_broker_alone`]: no other test uses it
//! meanwhile) and runs only where `scripts/kafka.sh` owns the broker
//! (`scripts/test.sh` says so with POPBILL_TEST_KAFKA_SCRIPT=1). The
//! topic-settings test needs the real broker too; the one about an
//! unreachable broker needs none.
//!
//! The two tests that read the log capture it with a process-wide
//! subscriber (librdkafka's callbacks run on its own threads, which a
//! thread-local one would miss). In this binary the other tests' bridges
//! and Kafka clients log at the same time, and the count of librdkafka
//! lines would be theirs too; so each of these runs in a child process of
//! its own ([`alone_in_a_child_process`]), where its lines are the only
//! ones.

use std::process::Command;
use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::common::*;

fn kafka_script(arg: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh");
    let out = Command::new(script).arg(arg).output().expect("kafka.sh");
    assert!(
        out.status.success(),
        "kafka.sh {arg}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn kafka_down_during_the_first_copy_then_back_gives_exactly_one_record() {
    let broker = kafka_sh_broker_alone("it stops and restarts the broker").await;
    let brokers = broker.servers();
    let prefix = unique("it-outage-");
    let mut cfg = test_config(&brokers, &prefix);
    cfg.server.request_timeout = Duration::from_secs(3);
    cfg.kafka.message_timeout = Duration::from_secs(2);
    let bridge = start(cfg).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let mid = unique("mid-");

    kafka_script("kill");
    let t0 = Instant::now();
    let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(
        t0.elapsed() < Duration::from_millis(3500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(deliveries(&bridge, "failed").await, 1.0);

    kafka_script("start");
    // POPBiLL retries minutes later; here, as soon as the bridge is ready.
    wait_ready(&bridge, Duration::from_secs(60)).await;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let a = post(&bridge, &issue_headers(&mid), ISSUE_BODY.to_vec()).await;
        if a.status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < until,
            "retry never succeeded: {} {}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        deliveries(&bridge, "acknowledged").await,
        1.0,
        "the retry was published, not counted as a duplicate"
    );
    let topic = format!("{prefix}.taxinvoice.state.issue");
    assert_eq!(records_with_id(&brokers, &topic, &mid, 1).await, 1);
    bridge.shutdown().await;
}

/// Names, in the child process [`alone_in_a_child_process`] starts, the
/// test that runs there.
const ALONE: &str = "POPBILL_IT_ALONE";

/// Runs the test `name` (its path in this binary, as `cargo test --test it
/// -- --list` shows it) again in a child process of this test binary, with
/// no other test, and asserts that it passed there: `true` (the test is
/// done). In that child it returns `false`: run the test.
async fn alone_in_a_child_process(name: &str) -> bool {
    if std::env::var(ALONE).as_deref() == Ok(name) {
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = tokio::process::Command::new(exe)
        .args([name, "--exact", "--include-ignored", "--nocapture"])
        .env(ALONE, name)
        .output()
        .await
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // "1 passed": the filter found the test, and it ran.
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed;"),
        "{name}, alone in a child process: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    true
}

/// Formatted log lines, kept in memory for the test to count.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    /// Installs the process-wide subscriber (librdkafka's callbacks run on
    /// its own threads, so a thread-local one would miss them). Also
    /// captures the `log` crate, which rdkafka's default callbacks use.
    fn install() -> Captured {
        static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
        CAPTURED
            .get_or_init(|| {
                let c = Captured::default();
                tracing_subscriber::fmt()
                    .with_writer(c.clone())
                    .with_ansi(false)
                    .with_max_level(tracing::Level::INFO)
                    .try_init()
                    .expect("the only subscriber of this process");
                c
            })
            .clone()
    }

    fn lines(&self) -> Vec<String> {
        let b = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&b)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_client_errors_while_unreachable_are_logged_once_not_30_a_second() {
    if alone_in_a_child_process(
        "outage::kafka_client_errors_while_unreachable_are_logged_once_not_30_a_second",
    )
    .await
    {
        return;
    }
    let logs = Captured::install();
    let mut cfg = test_config(
        &format!("127.0.0.1:{}", closed_port()),
        &unique("it-quiet-"),
    );
    cfg.kafka.admin_timeout = Duration::from_secs(1);
    let bridge = start(cfg).await;
    // A delivery during the outage makes every client try (producer,
    // admin, ledger reader).
    let a = post(&bridge, &issue_headers(&unique("q-")), ISSUE_BODY.to_vec()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let kafka_lines: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|l| l.contains("librdkafka"))
        .collect();
    assert!(!kafka_lines.is_empty(), "the outage is said at least once");
    assert!(
        kafka_lines.len() <= 3,
        "{} librdkafka lines in 8 s (want the state change once, then a summary every 30 s):\n{}",
        kafka_lines.len(),
        kafka_lines.join("\n")
    );
    bridge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn topic_settings_that_break_a_promise_are_named_in_the_log_and_readyz() {
    // Held while the child runs the test, too: the broker is not stopped
    // under it.
    let broker = real_broker().await;
    if alone_in_a_child_process(
        "outage::topic_settings_that_break_a_promise_are_named_in_the_log_and_readyz",
    )
    .await
    {
        return;
    }
    let logs = Captured::install();
    let brokers = broker.servers();
    let prefix = unique("it-settings-");
    // Made elsewhere, before the bridge starts (topic-level configs, so
    // the shared broker is untouched): a routed topic that can never take
    // an acks=all write on one replica, and a ledger kept one minute.
    let routed = format!("{prefix}.taxinvoice.state.issue");
    let ledger = format!("{prefix}.ledger");
    create_topic_with(
        &brokers,
        &routed,
        &[
            ("min.insync.replicas", "2"),
            ("max.message.bytes", "2000000"),
        ],
    )
    .await;
    create_topic_with(
        &brokers,
        &ledger,
        &[
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "60000"),
        ],
    )
    .await;
    let mut cfg = test_config(&brokers, &prefix);
    cfg.routes.known = vec!["TAXINVOICE.STATE:Issue".into()];
    let bridge = start(cfg).await;

    let until = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = get(bridge.admin_addr, "/readyz").await;
        if body.contains("retention.ms") && body.contains("min.insync.replicas")
            || Instant::now() > until
        {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Every write to the routed topic fails: not ready, and why.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains(&format!(
            "topic {routed} has min.insync.replicas = 2 but 1 replica(s): every write fails"
        )),
        "{body}"
    );
    assert!(
        body.contains("lower the topic's min.insync.replicas to 1"),
        "{body}"
    );
    // The ledger forgets before dedup.window: a warning, with the fix.
    assert!(
        body.contains(&format!(
            "warning: duplicates ledger {ledger} keeps records for retention.ms = 60000"
        )),
        "{body}"
    );
    assert!(body.contains("at least 172800000"), "{body}");
    let text = metrics_text(&bridge).await;
    assert_eq!(
        metric(&text, "popbill_bridge_kafka_config_problems", &[]),
        2.0
    );

    // Said in the log once each, not every readiness round.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let said = |needle: &str| {
        logs.lines()
            .iter()
            .filter(|l| l.contains(needle) && l.contains("WARN"))
            .count()
    };
    assert_eq!(said(&format!("topic {routed} has min.insync.replicas")), 1);
    assert_eq!(
        said(&format!("duplicates ledger {ledger} keeps records")),
        1
    );
    bridge.shutdown().await;
}
