use super::*;

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
