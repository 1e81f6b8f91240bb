//! `popbill-bridge redrive` against the real broker: deliveries that land
//! on the fallback topic move to their topic once a route names them, once
//! each — across an interrupted run, a second run and a run from the start.

use std::collections::BTreeSet;
use std::time::Duration;

use hyper::StatusCode;
use popbill_bridge::commands::redrive::{Fate, RedriveArgs, redrive};

use crate::common::*;

const FAX: &str = "FAX.STATE";

fn fax_headers(mid: &str) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("Pb-Webhook-Type".into(), FAX.into()),
        ("Pb-Webhook-MID".into(), mid.into()),
    ]
}

fn fax_body(i: usize) -> Vec<u8> {
    format!(r#"{{"receiptNum":"0251114{i:05}","eventType":"RESULT","state":3,"result":4000}}"#)
        .into_bytes()
}

/// A re-drive run to its end (nothing stops it).
async fn run_redrive(
    cfg: &popbill_bridge::config::Config,
    source: &str,
    args: &RedriveArgs,
) -> Result<popbill_bridge::commands::redrive::Summary, String> {
    let (_never, no_stop) = popbill_bridge::signal::signal();
    redrive(cfg, source, args, false, no_stop).await
}

fn args(limit: Option<u64>, dry_run: bool, from_start: bool) -> RedriveArgs {
    RedriveArgs {
        config: None,
        brokers: None,
        from: "fallback".into(),
        since: None,
        until: None,
        limit,
        dry_run,
        from_start,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_new_route_moves_fallback_deliveries_once_even_when_interrupted_and_run_again() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-redrive-");
    let before = test_config(&brokers, &prefix);
    let bridge = start(before.clone()).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    const N: usize = 12;
    let mids: Vec<String> = (0..N).map(|_| unique("fax-")).collect();
    for (i, mid) in mids.iter().enumerate() {
        let a = post(&bridge, &fax_headers(mid), fax_body(i)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    bridge.shutdown().await;

    // The operator adds the route.
    let mut after = before.clone();
    after.routes.known.push(format!("{FAX}:RESULT"));
    let fallback = after.routes.fallback.clone();
    let routed = format!("{prefix}.fax.state.result");

    // A dry run says what it would do and does nothing.
    let s = run_redrive(&after, &fallback, &args(None, true, false))
        .await
        .expect("dry run");
    assert_eq!(
        s.count(|f| matches!(f, Fate::Redriven(_))),
        N as u64,
        "{s:?}"
    );
    assert!(
        !topic_exists(&brokers, &routed)
            || read_back(
                &brokers,
                std::slice::from_ref(&routed),
                0,
                Duration::from_secs(3),
                Duration::from_millis(500)
            )
            .await
            .is_empty()
    );

    // Interrupted after 5 records, then run again: every delivery moves once.
    let first = run_redrive(&after, &fallback, &args(Some(5), false, false))
        .await
        .expect("first run");
    assert_eq!(
        first.count(|f| *f == Fate::Redriven(routed.clone())),
        5,
        "{first:?}"
    );
    let second = run_redrive(&after, &fallback, &args(None, false, false))
        .await
        .expect("second run");
    assert_eq!(
        second.count(|f| *f == Fate::Redriven(routed.clone())),
        (N - 5) as u64,
        "{second:?}"
    );
    // From the start: everything is recognised as published.
    let third = run_redrive(&after, &fallback, &args(None, false, true))
        .await
        .expect("third run");
    assert_eq!(
        third.count(|f| matches!(f, Fate::Redriven(_))),
        0,
        "{third:?}"
    );
    assert_eq!(third.count(|f| *f == Fate::AlreadyPublished), N as u64);

    let records = read_back(
        &brokers,
        std::slice::from_ref(&routed),
        N,
        Duration::from_secs(15),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(records.len(), N, "one record per delivery on the new topic");
    let ids: BTreeSet<String> = records
        .iter()
        .filter_map(|m| record_header(m, "ce_id"))
        .collect();
    assert_eq!(ids, mids.iter().cloned().collect::<BTreeSet<_>>());
    for m in &records {
        let from = record_header(m, "popbill-bridge-redriven-from").expect("redriven-from header");
        assert!(from.starts_with(&format!("{fallback}/")), "{from}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn deliveries_still_unrouted_are_left_where_they_are() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-redrive-left-");
    let cfg = test_config(&brokers, &prefix);
    let bridge = start(cfg.clone()).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let a = post(&bridge, &fax_headers(&unique("fax-")), fax_body(1)).await;
    assert_eq!(a.status, StatusCode::OK);
    bridge.shutdown().await;
    let s = run_redrive(&cfg, &cfg.routes.fallback, &args(None, false, false))
        .await
        .expect("run");
    assert_eq!(s.count(|f| *f == Fate::StillUnrouted), 1, "{s:?}");
    assert_eq!(s.count(|f| matches!(f, Fate::Redriven(_))), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn dead_letters_that_still_do_not_parse_stay_with_their_reason() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-redrive-dl-");
    let mut cfg = test_config(&brokers, &prefix);
    // A verified sender: its malformed deliveries are dead-lettered.
    cfg.access.allow = vec!["127.0.0.1/32".into()];
    let bridge = start(cfg.clone()).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    // Retried as POPBiLL would: on a busy machine the first write to a
    // topic created moments ago may miss the deadline.
    let headers = issue_headers(&unique("mid-"));
    let mut a = post(&bridge, &headers, b"{not json".to_vec()).await;
    for _ in 0..2 {
        if a.status == StatusCode::OK {
            break;
        }
        a = post(&bridge, &headers, b"{not json".to_vec()).await;
    }
    assert_eq!(a.status, StatusCode::OK, "dead-lettered: {}", a.body);
    bridge.shutdown().await;
    let mut a = args(None, false, false);
    a.from = "dead-letter".into();
    let s = run_redrive(&cfg, &cfg.dead_letter.topic, &a)
        .await
        .expect("run");
    assert_eq!(
        s.count(|f| *f == Fate::StillInvalid("not_json")),
        1,
        "{s:?}"
    );
}

/// Posts `n` FAX deliveries (16 at a time) through a bridge on `cfg`, each
/// `copies` times; returns their MIDs.
async fn fallback_deliveries(
    cfg: &popbill_bridge::config::Config,
    n: usize,
    copies: usize,
) -> Vec<String> {
    let bridge = start(cfg.clone()).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let mids: Vec<String> = (0..n).map(|_| unique("fax-")).collect();
    for chunk in mids.chunks(16).enumerate().collect::<Vec<_>>() {
        let (c, chunk) = chunk;
        let posts: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(j, mid)| {
                let (addr, mid) = (bridge.webhook_addr, mid.clone());
                let i = c * 16 + j;
                tokio::spawn(async move {
                    for _ in 0..copies {
                        let a = request(
                            addr,
                            hyper::Method::POST,
                            "/popbill/webhook",
                            &fax_headers(&mid),
                            fax_body(i),
                        )
                        .await;
                        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
                    }
                })
            })
            .collect();
        for p in posts {
            p.await.expect("post");
        }
    }
    bridge.shutdown().await;
    mids
}

/// Issue #23: every `--since` failed (exit 2, `InvalidArgument`): the
/// offsets for a time were asked of the consumer's assignment before there
/// was one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn since_starts_at_the_first_record_written_at_or_after_it() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-redrive-since-");
    let before = test_config(&brokers, &prefix);
    let early = fallback_deliveries(&before, 4, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let since = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = fallback_deliveries(&before, 5, 1).await;
    let mut after = before.clone();
    after.routes.known.push(format!("{FAX}:RESULT"));
    let fallback = after.routes.fallback.clone();
    let routed = format!("{prefix}.fax.state.result");

    let mut a = args(None, false, false);
    a.since = Some(since);
    let s = run_redrive(&after, &fallback, &a)
        .await
        .expect("--since works");
    assert_eq!(s.looked_at, 5, "{s:?}");
    assert_eq!(s.count(|f| *f == Fate::Redriven(routed.clone())), 5);
    let records = read_back(
        &brokers,
        std::slice::from_ref(&routed),
        5,
        Duration::from_secs(15),
        Duration::from_secs(1),
    )
    .await;
    let ids: BTreeSet<String> = records
        .iter()
        .filter_map(|m| record_header(m, "ce_id"))
        .collect();
    assert_eq!(ids, late.iter().cloned().collect::<BTreeSet<_>>());
    assert!(early.iter().all(|m| !ids.contains(m)));

    // A time after the last record: nothing to do, and no error.
    let mut a = args(None, false, true);
    a.since = Some(std::time::SystemTime::now() + Duration::from_secs(3600));
    let s = run_redrive(&after, &fallback, &a)
        .await
        .expect("a future --since works");
    assert_eq!(s.looked_at, 0, "{s:?}");
}

/// Issue #23: Ctrl-C killed a run without waiting for its writes, their
/// ledger lines or its progress, so running it again published what had
/// been in flight a second time (121 to 248 events twice in 1,500). A stop
/// now finishes what is in flight and commits it: the next run publishes
/// the rest, and every event has one record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_stopped_run_finishes_what_is_in_flight_and_the_next_run_publishes_each_event_once() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-redrive-stop-");
    let before = test_config(&brokers, &prefix);
    const N: usize = 2000;
    let mids = fallback_deliveries(&before, N, 1).await;
    let mut after = before.clone();
    after.routes.known.push(format!("{FAX}:RESULT"));
    let fallback = after.routes.fallback.clone();
    let routed = format!("{prefix}.fax.state.result");

    // Stopped as soon as records start to land on the routed topic.
    let (stop, stop_signal) = popbill_bridge::signal::signal();
    let watcher = {
        let (brokers, routed) = (brokers.clone(), routed.clone());
        tokio::task::spawn_blocking(move || {
            wait_for_a_record(&brokers, &routed);
            stop.fire();
        })
    };
    let first = redrive(
        &after,
        &fallback,
        &args(None, false, false),
        false,
        stop_signal,
    )
    .await
    .expect("first run");
    watcher.await.expect("watcher");
    let moved_first = first.count(|f| *f == Fate::Redriven(routed.clone()));
    assert!(first.interrupted, "{first:?}");
    assert!(moved_first > 0 && moved_first < N as u64, "{first:?}");
    assert_eq!(
        first.count(|f| matches!(f, Fate::Failed(_))),
        0,
        "{first:?}"
    );

    let second = run_redrive(&after, &fallback, &args(None, false, false))
        .await
        .expect("second run");
    assert!(!second.interrupted);
    let moved_second = second.count(|f| *f == Fate::Redriven(routed.clone()));
    eprintln!(
        "stopped run: {moved_first} re-driven before the stop, {moved_second} by the next run, of {N}"
    );
    assert_eq!(moved_first + moved_second, N as u64, "{first:?} {second:?}");

    let per_event = records_per_event(&brokers, &routed, N).await;
    let twice: Vec<_> = per_event.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} events with more than one record, e.g. {:?}",
        twice.len(),
        twice.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(per_event.len(), N);
    assert!(mids.iter().all(|m| per_event.contains_key(m)));
}

/// Issue #23: a dry run counted a second record of the same event as
/// "would re-drive" (65 against a real 60). It must predict the real run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn a_dry_run_predicts_the_real_run_when_an_event_has_two_records() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-redrive-dry-");
    let mut before = test_config(&brokers, &prefix);
    // Detection off while they are written: every copy is a record.
    before.dedup.enabled = false;
    const N: usize = 6;
    fallback_deliveries(&before, N, 2).await;
    let mut after = before.clone();
    after.dedup.enabled = true;
    after.routes.known.push(format!("{FAX}:RESULT"));
    let fallback = after.routes.fallback.clone();

    let dry = run_redrive(&after, &fallback, &args(None, true, false))
        .await
        .expect("dry run");
    let real = run_redrive(&after, &fallback, &args(None, false, false))
        .await
        .expect("real run");
    assert_eq!(dry.looked_at, 2 * N as u64);
    assert_eq!(dry.fates, real.fates, "dry {dry:?} real {real:?}");
    assert_eq!(
        real.count(|f| matches!(f, Fate::Redriven(_))),
        N as u64,
        "{real:?}"
    );
    assert_eq!(
        real.count(|f| *f == Fate::AlreadyPublished),
        N as u64,
        "{real:?}"
    );
}

/// Issue #23, through the command line: Ctrl-C (SIGINT) stops
/// `popbill-bridge redrive` in order, with exit status 130 and the
/// summary saying so; run again, it moves the rest, and every event has
/// one record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kafka broker"]
async fn ctrl_c_stops_redrive_in_order_and_the_next_run_resumes_without_duplicates() {
    let broker = real_broker().await;
    let brokers = broker.servers();
    let prefix = unique("it-redrive-sigint-");
    const N: usize = 2000;
    fallback_deliveries(&test_config(&brokers, &prefix), N, 1).await;
    let routed = format!("{prefix}.fax.state.result");
    let command = || {
        let mut c = bridge_command();
        c.args(["redrive", "--brokers", &brokers]);
        with_test_settings(&mut c, &prefix);
        c.env("POPBILL_BRIDGE_ROUTES__KNOWN", format!("{FAX}:RESULT"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    let child = command().spawn().expect("redrive starts");
    // Ctrl-C once records start to land on the routed topic.
    let (b, t) = (brokers.clone(), routed.clone());
    let pid = child.id();
    tokio::task::spawn_blocking(move || {
        wait_for_a_record(&b, &t);
        // kill(1) sends the signal a terminal's Ctrl-C sends.
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    })
    .await
    .expect("signaller");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("redrive ran");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert!(
        stderr.contains("finishing the records in flight"),
        "{stderr}"
    );

    let again = command().output().expect("second run");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let per_event = records_per_event(&brokers, &routed, N).await;
    assert_eq!(per_event.len(), N);
    let twice = per_event.values().filter(|n| **n > 1).count();
    assert_eq!(
        twice, 0,
        "events with more than one record after Ctrl-C and a second run"
    );
}

/// Returns once `topic` (three partitions, as `test_config` makes them)
/// holds a record, or after a minute. Blocks its thread.
fn wait_for_a_record(brokers: &str, topic: &str) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("client");
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < until {
        let landed: i64 = (0..3)
            .filter_map(|p| c.fetch_watermarks(topic, p, Duration::from_secs(1)).ok())
            .map(|(lo, hi)| hi - lo)
            .sum();
        if landed > 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How many records of each event (`ce_id`) `topic` holds, read once
/// `expected` arrived (or 30 s passed).
async fn records_per_event(
    brokers: &str,
    topic: &str,
    expected: usize,
) -> std::collections::BTreeMap<String, usize> {
    let records = read_back(
        brokers,
        &[topic.to_string()],
        expected,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    let mut per_event = std::collections::BTreeMap::<String, usize>::new();
    for m in &records {
        *per_event
            .entry(record_header(m, "ce_id").unwrap_or_default())
            .or_default() += 1;
    }
    per_event
}
