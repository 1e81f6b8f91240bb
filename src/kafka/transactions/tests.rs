use super::*;

fn enabled() -> TransactionsConfig {
    TransactionsConfig::default()
}

#[test]
fn the_defaults_pass_with_the_default_message_timeout() {
    let kafka = crate::kafka::KafkaConfig::default();
    assert!(kafka.transactions.enabled, "on by default");
    assert_eq!(enabled().check(kafka.message_timeout), Vec::<String>::new());
}

#[test]
fn a_transaction_timeout_shorter_than_a_records_retries_is_refused_naming_both_settings() {
    let cfg = TransactionsConfig {
        timeout: Duration::from_secs(4),
        ..enabled()
    };
    let errs = cfg.check(Duration::from_secs(4));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("kafka.transactions.timeout"), "{errs:?}");
    assert!(errs[0].contains("kafka.message_timeout"), "{errs:?}");
}

#[test]
fn one_producer_is_refused_because_none_would_take_deliveries_during_a_commit() {
    let cfg = TransactionsConfig {
        producers: 1,
        ..enabled()
    };
    let errs = cfg.check(Duration::from_secs(4));
    assert!(
        errs.iter()
            .any(|e| e.contains("kafka.transactions.producers")),
        "{errs:?}"
    );
}

#[test]
fn turned_off_nothing_of_the_section_is_checked() {
    let cfg = TransactionsConfig {
        enabled: false,
        producers: 0,
        timeout: Duration::ZERO,
        ..enabled()
    };
    assert!(cfg.check(Duration::from_secs(4)).is_empty());
}

#[test]
fn the_writers_name_is_the_configured_id_or_one_stable_for_this_host_and_port() {
    let named = TransactionsConfig {
        id: "replica-a".into(),
        ..enabled()
    };
    assert_eq!(named.id_prefix("popbill-bridge", 8080), "replica-a");
    let default = enabled().id_prefix("popbill-bridge", 8080);
    assert!(default.starts_with("popbill-bridge-"), "{default}");
    assert!(default.ends_with("-8080"), "{default}");
    // Stable: a restart on the same host and port takes the same name, and
    // so fences its former self.
    assert_eq!(default, enabled().id_prefix("popbill-bridge", 8080));
    assert_ne!(default, enabled().id_prefix("popbill-bridge", 8081));
}
