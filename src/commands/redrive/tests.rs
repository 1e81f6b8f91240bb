use super::*;

#[test]
fn times_are_read_in_utc_and_with_an_offset() {
    let utc = parse_time("2025-11-14T00:30:00Z").expect("utc");
    let kst = parse_time("2025-11-14T09:30:00+09:00").expect("offset");
    assert_eq!(utc, kst);
    assert!(parse_time("yesterday").is_err());
}

#[test]
fn progress_is_committed_up_to_the_first_unfinished_record_and_never_past_a_failure() {
    let mut p = Progress::new(&BTreeMap::from([(0, (10, 20)), (1, (0, 5))]));
    p.finished(0, 11);
    assert_eq!(p.committable()[&0], 10, "10 is not finished yet");
    p.finished(0, 10);
    assert_eq!(p.committable()[&0], 12);
    p.failed(1, 1);
    p.finished(1, 0);
    p.finished(1, 2);
    assert_eq!(p.committable()[&1], 1, "stops at the failed record");
}

#[test]
fn the_summary_lists_each_fate_with_its_count() {
    let mut s = Summary::default();
    *s.fates.entry(Fate::Redriven("a".into())).or_default() += 2;
    *s.fates.entry(Fate::StillInvalid("not_json")).or_default() += 1;
    s.looked_at = 3;
    let t = s.table("popbill.unrouted", false);
    assert!(
        t.contains("re-driven to a") && t.contains("       2"),
        "{t}"
    );
    assert!(t.contains("still invalid: not_json (left)"), "{t}");
    assert_eq!(s.count(|f| matches!(f, Fate::Redriven(_))), 2);
}
