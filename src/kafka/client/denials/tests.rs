use super::*;

#[test]
fn the_topic_of_librdkafkas_refused_partition_line_is_read_and_remembered() {
    // As librdkafka 2.12 writes it (rdkafka_txnmgr.c, ADDPARTS).
    let line = "[thrd:sasl_ssl://127.0.0.1:19192/bootstrap]: sasl_ssl://127.0.0.1:19192/1: Failed to add partition \"it-x.taxinvoice.state.issue\" [2] to transaction: Broker: Topic authorization failed";
    assert_eq!(
        denied_topic("ADDPARTS", line),
        Some("it-x.taxinvoice.state.issue")
    );
    let denials = Denials::default();
    assert!(!denials.topic_within("it-x.taxinvoice.state.issue", Duration::from_secs(10)));
    denials.log_line("ADDPARTS", line);
    assert!(denials.topic_within("it-x.taxinvoice.state.issue", Duration::from_secs(10)));
    assert!(!denials.topic_within("it-x.other", Duration::from_secs(10)));
}

#[test]
fn other_partition_errors_and_facilities_are_not_denials() {
    let other =
        "Failed to add partition \"t\" [0] to transaction: Broker: Unknown topic or partition";
    assert_eq!(denied_topic("ADDPARTS", other), None);
    let elsewhere =
        "Failed to add partition \"t\" [0] to transaction: Broker: Topic authorization failed";
    assert_eq!(denied_topic("TXNERR", elsewhere), None);
}

#[test]
fn a_refused_group_is_new_once_kept_and_named_with_the_describe_acl() {
    let denials = Denials::default();
    assert!(denials.group("b-ledger", "Describe"));
    assert!(!denials.group("b-ledger", "Describe"));
    assert!(denials.group("b-redrive-t", "Read"));
    assert_eq!(
        denials.groups(),
        [
            ("b-ledger".to_string(), "Describe"),
            ("b-redrive-t".to_string(), "Read")
        ]
    );
    let said = refused_group("b-ledger", "Describe");
    assert!(
        said.contains("grant its principal Describe on group b-ledger"),
        "{said}"
    );
    assert!(said.contains("GroupAuthorizationFailed"), "{said}");
}
