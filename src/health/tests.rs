use super::*;

use crate::kafka::KafkaConfig;
use crate::kafka::publish::create_producer;
use crate::kafka::topics::TopicsConfig;

fn events() -> Arc<ClientEvents> {
    Arc::new(ClientEvents::default())
}

/// Readiness as it is when every round went well and no ledger is used.
fn all_well(ledger: Option<Arc<LedgerState>>, events: Arc<ClientEvents>) -> Health {
    let h = Health::new(ledger, events);
    h.kafka_up.store(true, Ordering::Release);
    h.checked.store(true, Ordering::Release);
    h
}

fn reasons(h: &Health) -> Vec<String> {
    h.readiness().expect_err("not ready")
}

#[test]
fn readiness_passes_when_kafka_answers_and_nothing_is_missing() {
    let h = all_well(None, events());
    assert_eq!(h.readiness(), Ok(()));
    assert!(h.warnings().is_empty());
}

#[test]
fn readiness_fails_until_kafka_answered_a_metadata_request() {
    let h = Health::new(None, events());
    assert_eq!(reasons(&h), ["Kafka metadata not reachable"]);
}

/// Issue #22: a wrong SASL password (or a certificate refused) makes the
/// metadata request fail with only "BrokerTransportFailure"; readiness
/// names what librdkafka's error callback said instead, until Kafka
/// answers. A mere transport error (broker down) adds nothing.
#[test]
fn readiness_names_the_authentication_or_tls_failure_librdkafka_reported() {
    use crate::kafka::client::KafkaContext;
    use rdkafka::ClientContext;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    let ev = events();
    let h = Health::new(None, ev.clone());
    let ctx = KafkaContext::other_client(ev.clone());
    for transport in [
        "sasl_ssl://127.0.0.1:19192/bootstrap: Connect to ipv4#127.0.0.1:19192 failed: Connection refused",
        // A broker that died mid-handshake: no refusal.
        "ssl://127.0.0.1:19193/bootstrap: Receive failed: error:0A000126:SSL routines::unexpected eof while reading",
    ] {
        ctx.error(
            KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            transport,
        );
        assert_eq!(reasons(&h), ["Kafka metadata not reachable"]);
    }
    let sasl = "sasl_ssl://127.0.0.1:19192/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
    ctx.error(KafkaError::Global(RDKafkaErrorCode::Authentication), sasl);
    assert_eq!(
        reasons(&h),
        [format!("Kafka metadata not reachable: librdkafka: {sasl}")]
    );
    let tls = "ssl://127.0.0.1:19193/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed";
    ctx.error(KafkaError::Global(RDKafkaErrorCode::SSL), tls);
    assert_eq!(
        reasons(&h),
        [format!("Kafka metadata not reachable: librdkafka: {tls}")]
    );
    // The broker refusing the client's certificate: a TLS alert, which
    // librdkafka reports as a transport failure.
    let alert = "ssl://127.0.0.1:19193/bootstrap: Receive failed: error:0A000412:SSL routines::sslv3 alert bad certificate: SSL alert number 42";
    ctx.error(
        KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
        alert,
    );
    assert_eq!(
        reasons(&h),
        [format!("Kafka metadata not reachable: librdkafka: {alert}")]
    );
    // Kafka answered: the refusal is history.
    ev.kafka_answered();
    assert_eq!(reasons(&h), ["Kafka metadata not reachable"]);
}

/// Issue #19: with statistics on, readiness waits for the idempotent
/// producer's ID, and fails again while librdkafka asks for a new one.
#[test]
fn readiness_waits_for_the_producer_id_the_statistics_report() {
    let ev = events();
    ev.watch_producer_id();
    let h = all_well(None, ev.clone());
    let r = reasons(&h);
    assert!(
        r.len() == 1 && r[0].contains("producer's ID is not known yet"),
        "{r:?}"
    );
    ev.producer_id_state(Some("WaitPID"));
    let r = reasons(&h);
    assert!(
        r.len() == 1 && r[0].contains("idempotence state WaitPID"),
        "{r:?}"
    );
    ev.producer_id_state(Some("Assigned"));
    assert_eq!(h.readiness(), Ok(()));
    // An epoch bump: no ID until Kafka grants a new one.
    ev.producer_id_state(Some("WaitPID"));
    assert!(h.readiness().is_err());
}

#[test]
fn with_statistics_off_readiness_does_not_wait_for_a_producer_id_it_cannot_see() {
    let ev = events();
    let h = all_well(None, ev.clone());
    ev.producer_id_state(Some("WaitPID"));
    assert_eq!(h.readiness(), Ok(()));
}

#[test]
fn set_shutting_down_fails_readiness_at_once() {
    let h = all_well(None, events());
    assert!(h.readiness().is_ok());
    h.set_shutting_down();
    assert_eq!(reasons(&h), ["shutting down"]);
}

#[test]
fn a_missing_topic_fails_readiness_with_its_line() {
    let h = all_well(None, events());
    *h.missing.lock().expect("lock") = vec!["topic t missing".to_string()];
    assert_eq!(reasons(&h), ["topic t missing"]);
}

#[test]
fn a_ledger_not_caught_up_fails_readiness() {
    let h = all_well(Some(Arc::new(LedgerState::default())), events());
    assert_eq!(reasons(&h), ["duplicates ledger not caught up"]);
}

#[test]
fn a_fatal_producer_error_fails_readiness_for_good_with_its_reason() {
    let ev = events();
    let h = all_well(None, ev.clone());
    ev.set_fatal("ClusterAuthorizationFailed: no");
    let r = reasons(&h);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].contains("fatal error") && r[0].contains("ClusterAuthorizationFailed: no"),
        "{r:?}"
    );
    // Nothing clears it: a second fatal error does not replace the first.
    ev.set_fatal("other");
    assert!(reasons(&h)[0].contains("ClusterAuthorizationFailed: no"));
}

#[test]
fn a_blocking_topic_setting_fails_readiness_and_a_risky_one_is_only_a_warning() {
    let h = all_well(None, events());
    *h.config_problems.lock().expect("lock") = vec![
        ConfigProblem {
            text: "blocks".into(),
            blocking: true,
        },
        ConfigProblem {
            text: "risky".into(),
            blocking: false,
        },
    ];
    assert_eq!(reasons(&h), ["blocks"]);
    assert_eq!(h.warnings(), ["risky"]);
}

#[test]
fn every_reason_is_given_at_once() {
    let ev = events();
    let h = Health::new(Some(Arc::new(LedgerState::default())), ev.clone());
    h.set_shutting_down();
    ev.set_fatal("f");
    *h.missing.lock().expect("lock") = vec!["topic t missing".to_string()];
    let r = reasons(&h);
    assert_eq!(r.len(), 5, "{r:?}");
    assert_eq!(r[0], "shutting down");
    assert!(r[1].contains("fatal error"), "{r:?}");
    assert_eq!(
        r[2..],
        [
            "Kafka metadata not reachable",
            "topic t missing",
            "duplicates ledger not caught up"
        ]
    );
}

// --- `check` against librdkafka's mock cluster -----------------------

type Mock = crate::kafka::mock::Cluster;

/// A mock cluster holding `present`, and the topics part of a bridge
/// whose routes go to `routed` (`topics.create` off).
fn topics(present: &[&str], routed: &[&str]) -> (Mock, Topics, Arc<ClientEvents>, Metrics) {
    let cluster = crate::kafka::mock::with_topics(present);
    let routes = crate::route::numbered(routed);
    let kafka = KafkaConfig {
        brokers: cluster.bootstrap_servers(),
        admin_timeout: Duration::from_millis(500),
        statistics_interval: Duration::ZERO,
        ..KafkaConfig::default()
    };
    let config = crate::config::Config::default();
    let ev = events();
    let metrics = Metrics::new(&routes);
    let producer = create_producer(
        &kafka,
        config.max_record_bytes(),
        Arc::new(Metrics::new(&routes)),
        ev.clone(),
    )
    .expect("producer");
    let t = Topics::new(
        &routes,
        &kafka,
        TopicsConfig {
            create: false,
            ..TopicsConfig::default()
        },
        config.topic_needs(),
        None,
        producer,
        ev.clone(),
    )
    .expect("topics");
    (cluster, t, ev, metrics)
}

#[tokio::test]
async fn a_round_against_a_healthy_cluster_makes_it_ready() {
    let (_cluster, topics, ev, metrics) = topics(&["t.a"], &["t.a"]);
    let h = Health::new(None, ev);
    assert!(h.readiness().is_err(), "not ready before a round");
    h.check(&topics, &metrics).await;
    assert_eq!(h.readiness(), Ok(()));
}

#[tokio::test]
async fn a_round_names_the_topic_that_is_missing() {
    let (_cluster, topics, ev, metrics) = topics(&["t.a"], &["t.a", "t.b"]);
    let h = Health::new(None, ev);
    h.check(&topics, &metrics).await;
    assert_eq!(
        reasons(&h),
        ["topic t.b missing (topics.create is false: create it)"]
    );
}

#[tokio::test]
async fn a_round_while_kafka_is_down_says_so_and_lists_no_topic() {
    let (cluster, topics, ev, metrics) = topics(&["t.a"], &["t.a", "t.b"]);
    let h = Health::new(None, ev);
    h.check(&topics, &metrics).await;
    assert!(h.readiness().is_err());
    cluster.broker_down(1).expect("broker down");
    h.check(&topics, &metrics).await;
    // What is missing is unknown while Kafka does not answer.
    assert_eq!(reasons(&h), ["Kafka metadata not reachable"]);
}
