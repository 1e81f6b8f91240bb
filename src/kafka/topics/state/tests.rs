use super::*;

fn topic(name: &str) -> TopicState {
    TopicState::new(Arc::from(name))
}

#[test]
fn a_denied_write_is_named_with_the_acl_until_it_is_old() {
    let t = topic("popbill.taxinvoice");
    let at = Instant::now();
    assert_eq!(t.write_denial(at), None);
    t.set_write_denied(at);
    let said = t.write_denial(at + Duration::from_secs(3)).expect("named");
    assert!(said.contains("Write on topic popbill.taxinvoice"), "{said}");
    assert!(said.contains("3s ago"), "{said}");
    assert_eq!(
        t.write_denial(at + DENIAL_KEPT + Duration::from_secs(1)),
        None
    );
}

#[test]
fn partitions_below_min_insync_replicas_are_counted_and_named() {
    let partitions = [(0, 3), (1, 1), (2, 1)];
    let (n, said) = starvation("popbill.t", &partitions, 2).expect("starved");
    assert_eq!(n, 2);
    assert!(
        said.contains("2 of 3 partition(s) of topic popbill.t"),
        "{said}"
    );
    assert!(
        said.contains("min.insync.replicas = 2 (partition 1: 1)"),
        "{said}"
    );
    assert!(said.contains("NOT_ENOUGH_REPLICAS"), "{said}");
    assert_eq!(starvation("popbill.t", &[(0, 2), (1, 3)], 2), None);
    // Not read yet: nothing is judged.
    assert_eq!(starvation("popbill.t", &partitions, 0), None);
}
