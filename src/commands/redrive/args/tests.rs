use super::*;

#[test]
fn times_are_read_in_utc_and_with_an_offset() {
    let utc = parse_time("2025-11-14T00:30:00Z").expect("utc");
    let kst = parse_time("2025-11-14T09:30:00+09:00").expect("offset");
    assert_eq!(utc, kst);
    assert!(parse_time("yesterday").is_err());
}
