use super::*;

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

fn cluster_with(
    topic: &str,
    partitions: i32,
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster
        .create_topic(topic, partitions, 1)
        .expect("mock topic");
    cluster
}

fn client_of(
    cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("client")
}

#[test]
fn a_topic_whose_every_partition_answers_serves_with_its_partition_count() {
    let cluster = cluster_with("t", 3);
    let p = client_of(&cluster);
    let n = wait_serving(p.client(), "t", 0, Duration::from_secs(5)).expect("serves");
    assert_eq!(n, 3);
}

#[test]
fn a_partition_whose_leader_answers_not_leader_is_waited_for_until_it_answers() {
    let cluster = cluster_with("t", 2);
    let p = client_of(&cluster);
    // The leader refuses ListOffsets a few times, as a broker that has
    // not applied a new partition yet does.
    cluster.request_errors(
        RDKafkaApiKey::ListOffsets,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 4],
    );
    let n = wait_serving(p.client(), "t", 0, Duration::from_secs(10)).expect("serves in the end");
    assert_eq!(n, 2);
}

#[test]
fn a_partition_that_never_answers_within_the_budget_is_named_in_the_cause() {
    let cluster = cluster_with("t", 1);
    let p = client_of(&cluster);
    cluster.request_errors(
        RDKafkaApiKey::ListOffsets,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 10_000],
    );
    let started = Instant::now();
    let cause =
        wait_serving(p.client(), "t", 0, Duration::from_millis(600)).expect_err("never serves");
    assert!(cause.contains("partition 0 does not serve yet"), "{cause}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn partitions_already_seen_serving_are_not_asked_again() {
    let cluster = cluster_with("t", 2);
    let p = client_of(&cluster);
    // Every ListOffsets fails: only a call that asks none can succeed.
    cluster.request_errors(
        RDKafkaApiKey::ListOffsets,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 10_000],
    );
    assert_eq!(
        wait_serving(p.client(), "t", 2, Duration::from_millis(600)),
        Ok(2)
    );
}

#[test]
fn a_topic_not_listed_within_the_budget_is_not_serving() {
    let cluster = cluster_with("t", 1);
    let p = client_of(&cluster);
    let cause =
        wait_serving(p.client(), "absent", 0, Duration::from_millis(400)).expect_err("absent");
    assert!(
        cause.contains("metadata") || cause.contains("not listed"),
        "{cause}"
    );
}
