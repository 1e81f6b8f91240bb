use super::*;

fn ends(e: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    e.iter().copied().collect()
}

fn refused() -> KafkaError {
    KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed)
}

#[test]
fn an_empty_ledger_is_read_only_once_a_fetch_reached_the_end_of_every_partition() {
    // Before: an empty partition counted as read from its end offset
    // alone, which Kafka gives without the Read right.
    let mut c = CatchUp::new(ends(&[(0, 0), (1, 0)]));
    assert!(!c.caught_up());
    c.end_reached(0);
    assert!(!c.caught_up());
    c.end_reached(1);
    assert!(c.caught_up());
}

#[test]
fn a_partition_is_read_at_its_last_record_or_at_its_end() {
    let mut c = CatchUp::new(ends(&[(0, 10), (1, 5)]));
    c.record(0, 8);
    assert!(!c.caught_up());
    c.record(0, 9);
    // Partition 1 ends in commit markers: its last record is offset 3.
    c.record(1, 3);
    assert!(!c.caught_up());
    c.end_reached(1);
    assert!(c.caught_up());
}

#[test]
fn a_refused_read_is_not_caught_up_and_names_the_read_acl_on_the_ledger() {
    let mut c = CatchUp::new(ends(&[(0, 0)]));
    assert!(c.refused_by(&refused(), "popbill.ledger"));
    c.end_reached(0);
    assert!(c.caught_up(), "a fetch that succeeds ends the refusal");
    // Refused later (an ACL taken away): not caught up again.
    assert!(c.refused_by(&refused(), "popbill.ledger"));
    assert!(!c.caught_up());
    let why = c.refused().expect("a reason");
    assert!(why.contains("Read on topic popbill.ledger"), "{why}");
    assert!(why.contains("TopicAuthorizationFailed"), "{why}");
    c.record(0, 0);
    assert!(c.caught_up());
}

#[test]
fn a_refused_group_is_not_a_refused_read_nor_are_other_errors() {
    // Before: a refused group made the ledger "refused" until the next
    // record or end of partition, so an idle ledger kept a replica unready.
    let mut c = CatchUp::new(ends(&[]));
    let group = KafkaError::MessageConsumption(RDKafkaErrorCode::GroupAuthorizationFailed);
    assert!(!c.refused_by(&group, "l"));
    let transport = KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure);
    assert!(!c.refused_by(&transport, "l"));
    assert!(c.caught_up());
}
