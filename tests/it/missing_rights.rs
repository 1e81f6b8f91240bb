//! Every missing right is named (issue #22): on the secured broker, a
//! principal holding the ACLs docs/deploy.md lists but one. For each,
//! `/readyz`, the log line and (where a delivery is refused) the 503 body
//! name the resource, the operation and the ACL that grants it; a right
//! Kafka implies (Describe on the topics) is shown to be implied. The
//! rights taken away in `secured` (Read on the ledger, Write on a routed
//! topic, DescribeConfigs) are not repeated here. IdempotentWrite on the
//! Cluster is granted to no test: `least_privilege` shows it unneeded.

use std::time::Duration;

use hyper::StatusCode;

use crate::common::*;
use crate::secured::{LeaveOut, SASL_BOOTSTRAP, Secured, Unprivileged, bridge_env, sasl_env};

/// The first sample delivery (routed to `<prefix>.taxinvoice.state.issue`).
async fn post_sample(u: &Unprivileged) -> Answer {
    let sample = samples("deliveries.jsonl").remove(0);
    post(
        &u.bridge,
        &sample.header_list(),
        sample.body.clone().into_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn without_create_on_the_topics_readiness_the_log_and_the_503_name_each_topic_and_create() {
    let s = Secured::get().await;
    let u = Unprivileged::start(&s, "it-nocreate-", LeaveOut::TopicCreate).await;
    let topic = format!("{}.taxinvoice.state.issue", u.prefix);
    let body = wait_unready_with(
        &u.bridge,
        &format!("topic {topic} missing and cannot be created"),
        Duration::from_secs(60),
    )
    .await;
    // Either code Kafka may give for it (TopicAuthorizationFailed or
    // ClusterAuthorizationFailed): both mean the principal lacks Create.
    let fix = "the bridge may not create topics (";
    let grant = "create the topic by hand, grant the bridge's principal Create on it (docs/deploy.md, ACLs), or set topics.create = false";
    // From the topic's reason on: CI shows the start and end of a long
    // failure, and a whole /readyz body would push the cause out of it.
    let said: String = body
        .find(&format!("topic {topic} "))
        .map_or(&body[..], |at| &body[at..])
        .chars()
        .take(600)
        .collect();
    assert!(said.contains(fix) && said.contains(grant), "{said}");
    // The ledger, which the bridge also creates, names the same right.
    assert!(
        body.contains(&format!(
            "duplicates ledger {}.ledger: could not create topic",
            u.prefix
        )),
        "{body}"
    );
    let a = post_sample(&u).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(
        a.body.contains(&format!(
            "topic {topic} does not exist and cannot be created"
        )) && a.body.contains(grant),
        "{}",
        a.body
    );
    let text = u.log.text();
    assert!(
        text.contains("Kafka refused to create it") && text.contains(&topic),
        "{text}"
    );
    assert!(text.contains(grant), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn without_describe_on_the_topics_the_bridge_works_since_write_and_read_imply_it() {
    let s = Secured::get().await;
    let u = Unprivileged::start(&s, "it-nodescribe-topics-", LeaveOut::TopicDescribe).await;
    wait_ready(&u.bridge, Duration::from_secs(60)).await;
    let a = post_sample(&u).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));
    let text = u.log.text();
    assert!(!text.contains("AuthorizationFailed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn without_the_transactional_id_acl_readiness_the_log_and_the_503_name_the_id_and_the_acl() {
    // Before: the 503 said only "no Kafka transactional writer is ready
    // yet; retry".
    let s = Secured::get().await;
    let u = Unprivileged::start(&s, "it-notxid-", LeaveOut::TransactionalId).await;
    let id = format!("{}-writer-0", u.prefix);
    let grant = format!(
        "grant the bridge's principal Write and Describe on TransactionalId \"{id}\" (or the prefix kafka.transactions.id)"
    );
    let body = wait_unready_with(&u.bridge, &grant, Duration::from_secs(60)).await;
    assert!(
        body.contains(&format!("Kafka refuses transactional id \"{id}\"")),
        "{body}"
    );
    let a = post_sample(&u).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(
        a.body
            .contains("no Kafka transactional writer is ready yet")
            && a.body.contains("Write and Describe on TransactionalId")
            && a.body.contains(&u.prefix),
        "{}",
        a.body
    );
    let text = u.log.text();
    assert!(text.contains("transactional writer not ready"), "{text}");
    assert!(text.contains(&grant.replace('"', "\\\"")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn without_describe_on_the_ledger_group_the_bridge_is_ready_and_readyz_warns_naming_the_group_and_the_acl()
 {
    // Before: /readyz said "ready" and nothing else; the log had one
    // librdkafka line without the group's name.
    let s = Secured::get().await;
    let u = Unprivileged::start(&s, "it-nogroup-", LeaveOut::LedgerGroupDescribe).await;
    let group = format!("{}-ledger", u.prefix);
    let grant = format!("grant its principal Describe on group {group}");
    poll_readyz(
        u.bridge.admin,
        Duration::from_secs(60),
        &grant,
        |_, body| body.contains(&grant),
    )
    .await;
    // A warning, not a failure: the ledger is read (assigned partitions).
    wait_ready(&u.bridge, Duration::from_secs(60)).await;
    let (status, body) = get(u.bridge.admin, "/readyz").await;
    assert!(
        body.contains(&format!(
            "warning: Kafka refused the bridge Describe on group {group} (GroupAuthorizationFailed)"
        )),
        "{body}"
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let a = post_sample(&u).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));
    let text = u.log.text();
    assert!(
        text.contains("Kafka refuses the bridge its consumer group") && text.contains(&group),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn without_read_on_its_group_redrive_exits_naming_the_group_and_the_read_acl() {
    // Before: "popbill-bridge redrive: Meta data fetch error:
    // OperationTimedOut (Local: Timed out)", exit status 2.
    let s = Secured::get().await;
    let u = Unprivileged::start(&s, "it-noredrive-", LeaveOut::RedriveGroupRead).await;
    wait_ready(&u.bridge, Duration::from_secs(60)).await;
    let prefix = u.prefix.clone();
    let env = bridge_env(&prefix, &sasl_env(&s, None));
    let out = tokio::task::spawn_blocking(move || {
        let mut c = bridge_command();
        c.args(["redrive", "--brokers", SASL_BOOTSTRAP]);
        with_test_settings(&mut c, &prefix);
        c.env("POPBILL_BRIDGE_LOG__LEVEL", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
    })
    .await
    .expect("join")
    .expect("redrive runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let group = format!("{0}-redrive-{0}.unrouted", u.prefix);
    assert!(
        stderr.contains(&format!(
            "Kafka refuses the bridge consumer group {group}, where redrive keeps its progress (GroupAuthorizationFailed): grant its principal Read on group {group}"
        )),
        "{stderr}"
    );
}
