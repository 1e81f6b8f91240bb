use super::*;

use crate::error::{FailReason, Kind};
use crate::kafka::publish::create_producer;
use crate::telemetry::metrics::Metrics;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::kafka::mock::with_topics as mock;

use crate::route::numbered as routes;

fn topics_on(brokers: &str, routes: &[Route], settings: TopicsConfig) -> Topics {
    let kafka = KafkaConfig {
        brokers: brokers.to_string(),
        admin_timeout: Duration::from_millis(800),
        statistics_interval: Duration::ZERO,
        ..KafkaConfig::default()
    };
    let needs = default_needs();
    let events = Arc::new(ClientEvents::default());
    let producer = create_producer(
        &kafka,
        needs.record_bytes,
        Arc::new(Metrics::new(routes)),
        events.clone(),
    )
    .expect("producer");
    Topics::new(routes, &kafka, settings, needs, None, producer, events).expect("topics")
}

/// What the default configuration needs of a topic (`Config::topic_needs`
/// of the defaults), from the defaults of each part.
fn default_needs() -> Needs {
    let server = crate::http::ServerConfig::default();
    let limits = crate::http::server::LimitsConfig::default();
    let bounds = crate::kafka::publish::RecordBounds {
        max_body_bytes: server.max_body_bytes,
        max_header_bytes: limits.max_header_bytes,
        max_headers: limits.max_headers,
    };
    Needs {
        record_bytes: crate::kafka::publish::max_record_bytes(
            &bounds,
            &crate::kafka::record::CloudEventsConfig::default(),
        ),
        max_body_bytes: server.max_body_bytes,
        max_header_bytes: limits.max_header_bytes,
        min_insync_replicas: TopicsConfig::default()
            .settings
            .get("min.insync.replicas")
            .and_then(|v| v.trim().parse().ok()),
        // dedup.window's default.
        dedup_window: Some(Duration::from_secs(48 * 3600)),
    }
}

fn no_create() -> TopicsConfig {
    TopicsConfig {
        create: false,
        ..TopicsConfig::default()
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(2)
}

#[test]
fn before_any_round_every_topic_is_listed_as_missing() {
    let cluster = mock(&["t.a"]);
    let r = routes(&["t.a", "t.b", "t.a"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, no_create());
    // One entry per distinct topic, not per route.
    assert_eq!(
        t.missing(),
        [
            "topic t.a missing (topics.create is false: create it)",
            "topic t.b missing (topics.create is false: create it)"
        ]
    );
}

#[tokio::test]
async fn an_existing_topic_is_known_after_a_round_and_ensure_passes() {
    let cluster = mock(&["t.present"]);
    let r = routes(&["t.present"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, no_create());
    t.refresh().await.expect("Kafka answers");
    assert!(t.missing().is_empty(), "{:?}", t.missing());
    t.ensure(&r[0], soon()).await.expect("exists");
}

#[tokio::test]
async fn ensure_finds_an_existing_topic_without_a_round_first() {
    let cluster = mock(&["t.present"]);
    let r = routes(&["t.present"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, no_create());
    t.ensure(&r[0], soon()).await.expect("exists");
    assert!(t.missing().is_empty(), "{:?}", t.missing());
}

#[tokio::test]
async fn a_missing_topic_with_create_off_fails_ensure_naming_the_topic() {
    let cluster = mock(&["t.present"]);
    let r = routes(&["t.present", "t.absent"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, no_create());
    let e = t.ensure(&r[1], soon()).await.expect_err("missing");
    assert!(
        matches!(&e, BridgeError::TopicMissing(name) if name == "t.absent"),
        "{e:?}"
    );
    assert_eq!(e.kind(), Kind::Failed(FailReason::TopicMissing));
    assert!(e.to_string().contains("t.absent"), "{e}");
    // The other route is not held up by it.
    t.ensure(&r[0], soon()).await.expect("exists");
}

#[tokio::test]
async fn missing_lists_only_the_absent_topics_as_readiness_shows_them() {
    let cluster = mock(&["t.present"]);
    let r = routes(&["t.present", "t.absent"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, no_create());
    t.refresh().await.expect("Kafka answers");
    assert_eq!(
        t.missing(),
        ["topic t.absent missing (topics.create is false: create it)"]
    );
}

#[tokio::test]
async fn a_topic_created_by_hand_is_known_at_the_next_round() {
    let cluster = mock(&[]);
    let r = routes(&["t.later"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, no_create());
    t.refresh().await.expect("Kafka answers");
    assert_eq!(t.missing().len(), 1);
    cluster.create_topic("t.later", 1, 1).expect("topic");
    t.refresh().await.expect("Kafka answers");
    assert!(t.missing().is_empty(), "{:?}", t.missing());
    t.ensure(&r[0], soon()).await.expect("exists now");
}

/// Issue #19: metadata names a leader before the leader serves the
/// partition. A listed topic is not written to until each partition's
/// leader answers; readiness and the 503 say which and why.
#[tokio::test]
async fn a_listed_topic_whose_leader_does_not_answer_yet_is_not_written_to_until_it_does() {
    let cluster = mock(&["t.new"]);
    let r = routes(&["t.new"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, no_create());
    cluster.request_errors(
        RDKafkaApiKey::ListOffsets,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 10_000],
    );
    let e = t
        .ensure(&r[0], Instant::now() + Duration::from_millis(600))
        .await
        .expect_err("not serving");
    assert_eq!(e.kind(), Kind::Failed(FailReason::TopicNotServing), "{e:?}");
    assert!(e.to_string().contains("t.new"), "{e}");
    assert!(e.to_string().contains("does not serve yet"), "{e}");
    let missing = t.missing();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with("topic t.new not serving yet: partition 0"),
        "{missing:?}"
    );

    // The leader answers: the next try writes.
    cluster.clear_request_errors(RDKafkaApiKey::ListOffsets);
    t.ensure(&r[0], soon()).await.expect("serving now");
    assert!(t.missing().is_empty(), "{:?}", t.missing());
}

#[tokio::test]
async fn ensure_while_kafka_is_down_fails_as_kafka_unavailable_by_the_deadline() {
    let cluster = mock(&["t.present"]);
    let r = routes(&["t.present"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, no_create());
    cluster.broker_down(1).expect("broker down");
    let started = Instant::now();
    let e = t
        .ensure(&r[0], Instant::now() + Duration::from_millis(300))
        .await
        .expect_err("no metadata");
    assert!(matches!(e, BridgeError::KafkaUnavailable), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        t.refresh().await.is_err(),
        "a round says Kafka did not answer"
    );
}

#[tokio::test]
async fn a_topic_kafka_refused_to_create_is_answered_at_once_with_the_cause() {
    // The mock cluster does not answer CreateTopics: the refusal is
    // recorded as `create` records it.
    let cluster = mock(&[]);
    let r = routes(&["t.refused"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, TopicsConfig::default());
    // As a round against this one-broker cluster leaves it.
    t.brokers.store(1, Ordering::Release);
    t.all[0].set_cause(Some(
        t.creation_cause(RDKafkaErrorCode::InvalidReplicationFactor),
    ));
    let e = ensure_fails_at_once(&t, &r[0]).await;
    let BridgeError::TopicNotCreatable { topic, cause } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(topic, "t.refused");
    assert!(
        cause.contains("the cluster has 1 broker; set topics.replication_factor = 1 (it is 3)"),
        "{cause}"
    );
    let missing = t.missing();
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0]
            .starts_with("topic t.refused missing and cannot be created: the cluster has 1 broker"),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_creation_that_did_not_finish_is_not_taken_for_a_refusal() {
    // Before: a CreateTopics answered RequestTimedOut (a busy controller)
    // was recorded as "missing and cannot be created: Kafka refused to
    // create it", and every delivery routed there was answered that at
    // once until the next readiness round.
    let cluster = mock(&[]);
    let r = routes(&["t.busy"]);
    let t = topics_on(&cluster.bootstrap_servers(), &r, TopicsConfig::default());
    use RDKafkaErrorCode as C;
    for code in [
        C::RequestTimedOut,
        C::NotController,
        C::ThrottlingQuotaExceeded,
        C::OperationTimedOut,
    ] {
        let said = t.note_creation("t.busy", Err(code)).expect("a failure");
        assert!(
            said.contains("did not finish") && said.contains("asked again"),
            "{said}"
        );
        assert_eq!(t.all[0].cause(), None, "{code:?}");
        let missing = t.missing();
        assert_eq!(missing.len(), 1);
        assert!(
            missing[0].starts_with("topic t.busy missing: creating it did not finish")
                && !missing[0].contains("cannot be created"),
            "{missing:?}"
        );
        // Answered at once, without asking Kafka again for a second, and
        // not as a refusal.
        let e = ensure_fails_at_once(&t, &r[0]).await;
        let BridgeError::TopicCreationUnfinished { topic, cause } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(topic, "t.busy");
        assert!(cause.contains(&format!("{code}")), "{cause}");
        assert_eq!(e.kind(), Kind::Failed(FailReason::TopicMissing));
    }
    // A refusal is still kept, and a later creation clears both.
    let said = t
        .note_creation("t.busy", Err(C::TopicAuthorizationFailed))
        .expect("a refusal");
    assert!(said.contains("may not create topics"), "{said}");
    assert!(
        t.missing()[0].contains("cannot be created"),
        "{:?}",
        t.missing()
    );
    assert_eq!(t.note_creation("t.busy", Ok(true)), None);
    assert_eq!(t.all[0].cause(), None);
    assert_eq!(t.all[0].unfinished_lately(), None);
}

#[test]
fn each_creation_refusal_names_the_setting_that_fixes_it() {
    let r = routes(&["t"]);
    let t = topics_on("", &r, TopicsConfig::default());
    use RDKafkaErrorCode as C;
    for (code, setting) in [
        (C::InvalidReplicationFactor, "topics.replication_factor"),
        (C::InvalidPartitions, "topics.partitions"),
        (C::InvalidConfig, "topics.settings"),
        (C::PolicyViolation, "create the topic by hand"),
        (
            C::TopicAuthorizationFailed,
            "grant the bridge's principal Create on it",
        ),
        (
            C::ClusterAuthorizationFailed,
            "grant the bridge's principal Create on it",
        ),
    ] {
        let cause = t.creation_cause(code);
        assert!(cause.contains(setting), "{code:?}: {cause}");
    }
}

/// `ensure` fails within 100 ms: from what the topic's state holds, with
/// no admin call.
async fn ensure_fails_at_once(t: &Topics, route: &Route) -> BridgeError {
    let started = Instant::now();
    let e = t.ensure(route, soon()).await.expect_err("not created");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "no admin call"
    );
    e
}
