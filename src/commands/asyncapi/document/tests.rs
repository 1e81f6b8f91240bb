use super::*;

#[test]
fn consumers_are_told_to_read_committed_when_transactions_are_on() {
    let mut cfg = Config::default();
    let on = document(&cfg).expect("document");
    let text = on["info"]["description"].as_str().expect("description");
    assert!(text.contains("`isolation.level=read_committed`"), "{text}");
    assert!(text.contains("`read_uncommitted`"), "{text}");
    let ops = on["operations"].as_object().expect("operations");
    assert!(ops.values().all(|o| {
        o["summary"]
            .as_str()
            .is_some_and(|s| s.contains("isolation.level=read_committed"))
    }));
    cfg.kafka.transactions.enabled = false;
    let off = document(&cfg).expect("document");
    let text = off["info"]["description"].as_str().expect("description");
    assert!(text.contains("At least once"), "{text}");
    assert!(!text.contains("read_committed"), "{text}");
}
