//! `popbill-bridge redrive` against the real broker: deliveries that land
//! on the fallback topic move to their topic once a route names them, once
//! each — across an interrupted run, a second run and a run from the start.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use hyper::StatusCode;
use popbill_bridge::commands::redrive::{Fate, RedriveArgs, redrive};

use common::*;

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
async fn a_new_route_moves_fallback_deliveries_once_even_when_interrupted_and_run_again() {
    let Some(brokers) = real_broker() else { return };
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
    let s = redrive(&after, &fallback, &args(None, true, false), false)
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
    let first = redrive(&after, &fallback, &args(Some(5), false, false), false)
        .await
        .expect("first run");
    assert_eq!(
        first.count(|f| *f == Fate::Redriven(routed.clone())),
        5,
        "{first:?}"
    );
    let second = redrive(&after, &fallback, &args(None, false, false), false)
        .await
        .expect("second run");
    assert_eq!(
        second.count(|f| *f == Fate::Redriven(routed.clone())),
        (N - 5) as u64,
        "{second:?}"
    );
    // From the start: everything is recognised as published.
    let third = redrive(&after, &fallback, &args(None, false, true), false)
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
async fn deliveries_still_unrouted_are_left_where_they_are() {
    let Some(brokers) = real_broker() else { return };
    let prefix = unique("it-redrive-left-");
    let cfg = test_config(&brokers, &prefix);
    let bridge = start(cfg.clone()).await;
    wait_ready(&bridge, Duration::from_secs(30)).await;
    let a = post(&bridge, &fax_headers(&unique("fax-")), fax_body(1)).await;
    assert_eq!(a.status, StatusCode::OK);
    bridge.shutdown().await;
    let s = redrive(&cfg, &cfg.routes.fallback, &args(None, false, false), false)
        .await
        .expect("run");
    assert_eq!(s.count(|f| *f == Fate::StillUnrouted), 1, "{s:?}");
    assert_eq!(s.count(|f| matches!(f, Fate::Redriven(_))), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_that_still_do_not_parse_stay_with_their_reason() {
    let Some(brokers) = real_broker() else { return };
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
    let s = redrive(&cfg, &cfg.dead_letter.topic, &a, false)
        .await
        .expect("run");
    assert_eq!(
        s.count(|f| *f == Fate::StillInvalid("not_json")),
        1,
        "{s:?}"
    );
}
