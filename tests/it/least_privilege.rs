//! Least privilege, proven end to end (issue #22): on the secured broker of
//! `scripts/kafka.sh secured`, a principal holding exactly the ACLs
//! docs/deploy.md lists runs everything the bridge does, through each
//! listener (SASL_SSL with SCRAM, mutual TLS): a delivery answered `OK` and
//! in Kafka once, a duplicate, a second replica recognising the event from
//! the ledger, a dead letter, and `popbill-bridge redrive` of the dead
//! letter and of a fallback delivery, with its progress committed in its
//! group. Nothing any of them asks is refused.
//!
//! The broker, the ACL grants and the bridge's environment are those of
//! [`crate::secured`].

use std::process::Output;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use rdkafka::message::OwnedMessage;

use crate::common::*;
use crate::secured::{
    CLUSTER_ACL, LeastPrivilege, LogFile, MTLS_BOOTSTRAP, SASL_BOOTSTRAP, Secured, bridge_env,
    mtls_env, read_as_admin, sasl_env, spawn_bridge,
};

/// `popbill-bridge redrive --from <from>` as an operator runs it, with the
/// bridge's environment `env` (and `extra`).
async fn redrive(
    brokers: &str,
    prefix: &str,
    env: &[(String, String)],
    from: &str,
    extra: &[(&str, &str)],
) -> Output {
    let mut c = bridge_command();
    c.args(["redrive", "--brokers", brokers, "--from", from]);
    with_test_settings(&mut c, prefix);
    c.env("POPBILL_BRIDGE_LOG__LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(extra.iter().copied());
    tokio::task::spawn_blocking(move || c.output())
        .await
        .expect("join")
        .expect("redrive runs")
}

/// Its standard output (the summary), asserting it succeeded and was
/// refused nothing.
fn succeeded(out: &Output) -> String {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(!stderr.contains("AuthorizationFailed"), "{stderr}");
    stdout
}

/// How many records of `topic` carry `ce_id` = `id`, as the admin reads
/// the whole topic (`read_committed`).
async fn records_of(s: &Secured, topic: &str, id: &str) -> usize {
    let (admin, t) = (s.admin_config(), topic.to_string());
    // An id no record has: the reader reads for the whole window.
    let records: Vec<OwnedMessage> =
        tokio::task::spawn_blocking(move || read_as_admin(admin, &t, "-", Duration::from_secs(4)))
            .await
            .expect("reader thread");
    records
        .iter()
        .filter(|r| record_header(r, "ce_id").as_deref() == Some(id))
        .count()
}

/// The whole flow through a bridge on `brokers` (the listener's settings
/// in `listener`) whose principal holds only the documented ACLs.
async fn everything_works_with_only_the_documented_acls(
    brokers: &str,
    name: &str,
    listener: impl Fn(&Secured) -> Vec<(&'static str, String)>,
) {
    let s = Secured::get().await;
    let _cluster = CLUSTER_ACL.lock().await;
    let prefix = unique(name);
    let p = prefix.clone();
    let acls = tokio::task::spawn_blocking(move || LeastPrivilege::grant(&p))
        .await
        .expect("granting ACLs");
    // A verified sender (its malformed deliveries are dead-lettered).
    let mut settings = listener(&s);
    settings.push(("POPBILL_BRIDGE_ACCESS__ALLOW", "127.0.0.1/32".to_string()));
    let env = bridge_env(&prefix, &settings);
    // Two replicas: one ledger, transactional ids of their own.
    let env_b: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ID" => (k.clone(), format!("{v}-b")),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let (log_a, log_b) = (
        LogFile::new(&format!("{prefix}-a")),
        LogFile::new(&format!("{prefix}-b")),
    );
    let mut a = spawn_bridge(brokers, &prefix, &env, &log_a.0);
    let mut b = spawn_bridge(brokers, &prefix, &env_b, &log_b.0);
    // Not ready names what is missing (an ACL, a topic) in the panic.
    wait_ready(&a, Duration::from_secs(60)).await;
    wait_ready(&b, Duration::from_secs(60)).await;

    // A delivery: OK, and in Kafka.
    let sample = samples("deliveries.jsonl").remove(0);
    let mid = sample.header("Pb-Webhook-MID").expect("MID").to_string();
    let (headers, body) = (sample.header_list(), sample.body.clone().into_bytes());
    let first = post(&a, &headers, body.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // Its copy to the same replica: a duplicate.
    let copy = post(&a, &headers, body.clone()).await;
    assert_eq!((copy.status, copy.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(deliveries(&a, "duplicate").await, 1.0);
    // The other replica learns of it from the ledger (Read on the ledger,
    // Describe on its group), then recognises a copy sent to it.
    let until = Instant::now() + Duration::from_secs(20);
    while scrape(&b, "popbill_bridge_dedup_remembered_events", &[]).await < 1.0 {
        assert!(
            Instant::now() < until,
            "replica B never read A's ledger line; its log:\n{}",
            log_b.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let other = post(&b, &headers, body).await;
    assert_eq!((other.status, other.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(deliveries(&b, "duplicate").await, 1.0);
    assert_eq!(deliveries(&b, "acknowledged").await, 0.0);
    let topic = format!("{prefix}.taxinvoice.state.issue");
    assert_eq!(records_of(&s, &topic, &mid).await, 1, "records of {mid}");

    // A dead letter (a malformed body from a verified sender), and a
    // delivery no route names (the fallback topic).
    let dead = post(&a, &issue_headers(&unique("dl-")), b"{not json".to_vec()).await;
    assert_eq!(dead.status, StatusCode::OK, "dead-lettered: {}", dead.body);
    let fax_mid = unique("fax-");
    let fax = [
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Pb-Webhook-Type".to_string(), "FAX.STATE".to_string()),
        ("Pb-Webhook-MID".to_string(), fax_mid.clone()),
    ];
    let fax_body = br#"{"receiptNum":"025111400001","eventType":"RESULT","state":3,"result":4000}"#;
    let unrouted = post(&a, &fax, fax_body.to_vec()).await;
    assert_eq!(unrouted.status, StatusCode::OK, "{}", unrouted.body);
    a.kill9();
    b.kill9();
    // Nothing the replicas asked was refused: no Topic-, Group-,
    // TransactionalId- or ClusterAuthorizationFailed in their logs.
    for log in [&log_a, &log_b] {
        let text = log.text();
        assert!(!text.contains("AuthorizationFailed"), "{text}");
    }

    // redrive of the dead letter: read, left (it still does not parse),
    // its progress committed in its group: a second run finds nothing new.
    let dl = format!("{prefix}.deadletter");
    let out = succeeded(&redrive(brokers, &prefix, &env, "dead-letter", &[]).await);
    assert!(out.contains(&format!("1 record(s) of {dl}")), "{out}");
    assert!(out.contains("still invalid: not_json (left)"), "{out}");
    let out = succeeded(&redrive(brokers, &prefix, &env, "dead-letter", &[]).await);
    assert!(out.contains(&format!("0 record(s) of {dl}")), "{out}");
    // redrive of the fallback delivery once a route names it: published by
    // redrive's own transactional writers, on its topic once.
    let route = [("POPBILL_BRIDGE_ROUTES__KNOWN", "FAX.STATE:RESULT")];
    let out = succeeded(&redrive(brokers, &prefix, &env, "fallback", &route).await);
    let routed = format!("{prefix}.fax.state.result");
    assert!(out.contains(&format!("re-driven to {routed}")), "{out}");
    assert_eq!(records_of(&s, &routed, &fax_mid).await, 1, "{out}");
    drop(acls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn over_sasl_ssl_the_documented_acls_suffice_for_delivery_duplicate_replica_dead_letter_and_redrive()
 {
    everything_works_with_only_the_documented_acls(SASL_BOOTSTRAP, "it-lp-sasl-", |s| {
        sasl_env(s, None)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn over_mutual_tls_the_documented_acls_suffice_for_delivery_duplicate_replica_dead_letter_and_redrive()
 {
    everything_works_with_only_the_documented_acls(MTLS_BOOTSTRAP, "it-lp-mtls-", mtls_env).await;
}
