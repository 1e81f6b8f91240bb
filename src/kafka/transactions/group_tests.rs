use super::*;

#[test]
fn ledger_lines_are_cut_into_records_at_line_ends_within_the_limit() {
    let lines = b"aaaa\nbbbb\ncccc\ndd\n";
    let records = records_of(lines, 10);
    assert_eq!(records, [&b"aaaa\nbbbb\n"[..], &b"cccc\ndd\n"[..]]);
    // Every byte is kept, in order, and no line is split.
    assert_eq!(records.concat(), lines);
}

#[test]
fn a_ledger_line_longer_than_the_limit_goes_alone() {
    let lines = b"a\nbbbbbbbbbbbb\nc\n";
    let records = records_of(lines, 4);
    assert_eq!(records, [&b"a\n"[..], &b"bbbbbbbbbbbb\n"[..], &b"c\n"[..]]);
}

#[test]
fn no_lines_make_no_ledger_record() {
    assert!(records_of(b"", 100).is_empty());
}

#[test]
fn an_acl_refusal_at_start_names_the_transactional_id_acl_and_the_way_out() {
    let e = KafkaError::MessageProduction(RDKafkaErrorCode::TransactionalIdAuthorizationFailed);
    let text = describe_init_error("bridge-0", &e);
    assert!(text.contains("TransactionalId"), "{text}");
    assert!(text.contains("Write and Describe"), "{text}");
    assert!(
        text.contains("kafka.transactions.enabled = false"),
        "{text}"
    );
}
