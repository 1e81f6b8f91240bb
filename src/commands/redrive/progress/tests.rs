use super::*;

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
