use super::*;

fn needs() -> Needs {
    Needs {
        record_bytes: 1_083_000,
        max_body_bytes: 1_048_576,
        max_header_bytes: 16_384,
        min_insync_replicas: Some(2),
        dedup_window: Some(Duration::from_secs(48 * 3600)),
    }
}

fn topic(replicas: usize, isr: i64) -> TopicFacts {
    TopicFacts {
        name: "t".into(),
        replicas,
        max_message_bytes: Some(2_000_000),
        min_insync_replicas: Some(isr),
        retention_ms: Some(-1),
    }
}

#[test]
fn a_topic_below_the_largest_record_is_named_with_the_setting() {
    let mut t = topic(3, 2);
    t.max_message_bytes = Some(1_048_588);
    let p = check_topic(Role::Delivery, &t, &needs());
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(!p[0].blocking);
    assert!(
        p[0].text
            .contains("raise the topic's max.message.bytes to 1083000")
    );
    // The ledger's records are small: not checked there.
    assert!(check_topic(Role::Ledger, &t, &needs()).is_empty());
    t.max_message_bytes = Some(1_083_000);
    assert!(check_topic(Role::Delivery, &t, &needs()).is_empty());
    assert!(check_broker(1, 1_048_588, &needs()).is_some_and(|m| m.contains("message.max.bytes")));
    assert!(check_broker(1, 2_000_000, &needs()).is_none());
}

#[test]
fn min_insync_replicas_below_the_settings_or_below_2_with_3_replicas_is_named() {
    let n = needs();
    // As asked for: fine.
    assert!(check_topic(Role::Delivery, &topic(3, 2), &n).is_empty());
    // Below topics.settings.
    let p = check_topic(Role::Delivery, &topic(3, 1), &n);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].text
            .contains("below topics.settings' min.insync.replicas = 2")
    );
    assert!(
        p[0].text
            .contains("raise the topic's min.insync.replicas to 2")
    );
    // topics.settings without min.insync.replicas: still at least 2
    // with 3 replicas.
    let mut no_setting = n.clone();
    no_setting.min_insync_replicas = None;
    let p = check_topic(Role::Ledger, &topic(3, 1), &no_setting);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].text.contains("below 2 with 3 replicas"),
        "{}",
        p[0].text
    );
    // One replica (a one-broker cluster): 1 is all there can be, unless
    // topics.settings asks for more — then the replicas are short.
    assert!(check_topic(Role::Delivery, &topic(1, 1), &no_setting).is_empty());
    let p = check_topic(Role::Delivery, &topic(1, 1), &n);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].text.contains("add replicas"), "{}", p[0].text);
    // Above the replica count: every write fails, readiness too.
    let p = check_topic(Role::Delivery, &topic(1, 2), &n);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].blocking);
    assert!(p[0].text.contains("every write fails"));
}

#[test]
fn a_ledger_kept_shorter_than_the_dedup_window_is_named() {
    let n = needs();
    let mut t = topic(3, 2);
    t.retention_ms = Some(3_600_000);
    let p = check_topic(Role::Ledger, &t, &n);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].text.contains("retention.ms = 3600000 (1h)"),
        "{}",
        p[0].text
    );
    assert!(p[0].text.contains("at least 172800000"), "{}", p[0].text);
    // Delivery topics keep what their owners decide.
    assert!(check_topic(Role::Delivery, &t, &n).is_empty());
    // Forever, or at least the window: fine.
    for ok in [-1, 172_800_000, 345_600_000] {
        t.retention_ms = Some(ok);
        assert!(check_topic(Role::Ledger, &t, &n).is_empty(), "{ok}");
    }
    // Duplicate detection off: no window to keep.
    let mut off = n.clone();
    off.dedup_window = None;
    t.retention_ms = Some(1);
    assert!(check_topic(Role::Ledger, &t, &off).is_empty());
}
