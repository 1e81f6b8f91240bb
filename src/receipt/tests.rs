use super::*;

#[test]
fn a_report_with_an_offset_is_a_receipt() {
    let r = Receipt::from_report(2, 0).expect("offset 0 is a real offset");
    assert_eq!((r.partition(), r.offset()), (2, 0));
    let r = Receipt::from_report(0, i64::MAX).expect("any offset at or above 0");
    assert_eq!(r.offset(), i64::MAX);
}

#[test]
fn a_report_without_an_offset_is_unconfirmed_not_a_receipt() {
    // librdkafka's implicit acknowledgement: RD_KAFKA_OFFSET_INVALID.
    assert_eq!(
        Receipt::from_report(1, -1001),
        Err(Unconfirmed {
            partition: 1,
            offset: -1001
        })
    );
    // Every other negative offset librdkafka knows is a logical one
    // (BEGINNING -2, END -1, STORED -1000, TAIL): none is a place in a log.
    for offset in [-1, -2, -1000, i64::MIN] {
        assert!(Receipt::from_report(0, offset).is_err(), "{offset}");
    }
}

#[test]
fn a_report_without_a_partition_is_unconfirmed() {
    // RD_KAFKA_PARTITION_UA: the record never had a place.
    assert!(Receipt::from_report(-1, 5).is_err());
}

#[test]
fn unconfirmed_says_what_is_missing() {
    let text = Unconfirmed {
        partition: 1,
        offset: -1001,
    }
    .to_string();
    assert!(text.contains("without an offset"), "{text}");
    assert!(text.contains("partition 1"), "{text}");
    assert!(text.contains("-1001"), "{text}");
}
