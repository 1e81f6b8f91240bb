use super::*;

#[test]
fn ledger_keys_never_repeat_within_or_across_writers() {
    let (a, b) = (Keys::new(), Keys::new());
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        assert!(seen.insert(a.next()));
        assert!(seen.insert(b.next()));
    }
}
