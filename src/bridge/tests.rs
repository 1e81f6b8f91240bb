//! The configuration as start-up sees it: loaded, then checked by the parts
//! that own each section (`Parts::build`). What loading alone does (file,
//! environment, types) is tested beside config, in `config/tests.rs`.
use super::*;
use crate::config::tests::{brokers, env, file};
use crate::config::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[test]
fn defaults_fail_only_for_missing_brokers() {
    let cfg = Config::default();
    let err = check(&cfg).expect_err("no brokers must be an error");
    let text = err.to_string();
    assert!(text.contains("kafka.brokers is not set"), "{text}");
    assert_eq!(text.matches("\n  - ").count(), 1, "{text}");
}

#[test]
fn shipped_config_file_parses_and_documents_every_section() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/popbill-bridge.toml");
    let cfg = Config::load(
        Some(&path),
        env(&[("POPBILL_BRIDGE_KAFKA__BROKERS", "127.0.0.1:9092")]),
    )
    .expect("shipped config loads");
    check(&cfg).expect("shipped config is valid once brokers are set");
    let defaults = Config::default();
    assert_eq!(cfg.server.webhook_path, defaults.server.webhook_path);
    assert_eq!(cfg.routes.known, defaults.routes.known);
}

#[test]
fn a_dead_letter_topic_shared_with_the_ledger_or_a_route_is_refused() {
    let base = || {
        let mut c = Config::default();
        c.kafka.brokers = "k:9092".into();
        c.routes
            .overrides
            .insert("X.Y:Z".into(), "custom.topic".into());
        c
    };
    check(&base()).expect("the defaults are valid");
    for (topic, needle) in [
        ("popbill.bridge.ledger", "dedup.ledger_topic"),
        ("popbill.unrouted", "routes.fallback"),
        ("popbill.taxinvoice.state.issue", "TAXINVOICE.STATE:Issue"),
        ("custom.topic", "X.Y:Z"),
    ] {
        let mut c = base();
        c.dead_letter.topic = topic.into();
        let text = check(&c).expect_err(topic).to_string();
        assert!(
            text.contains("dead_letter.topic") && text.contains(needle),
            "{topic}: {text}"
        );
    }
    // Turned off, the dead-letter topic is never written: no clash.
    let mut c = base();
    c.dead_letter.enabled = false;
    c.dead_letter.topic = "popbill.unrouted".into();
    check(&c).expect("valid");
}

#[test]
fn an_empty_credential_or_list_entry_is_refused_not_ignored() {
    for (name, value) in [
        ("POPBILL_BRIDGE_AUTH__API_KEYS", ""),
        ("POPBILL_BRIDGE_AUTH__API_KEYS", "k1,,k2"),
        ("POPBILL_BRIDGE_AUTH__BASIC", ""),
        ("POPBILL_BRIDGE_AUTH__API_KEY_FILES", ""),
        ("POPBILL_BRIDGE_ACCESS__ALLOW", ""),
    ] {
        let loaded = Config::load(None, env(&[brokers(), (name, value)]));
        assert!(
            loaded.is_err() || loaded.is_ok_and(|c| check(&c).is_err()),
            "{name}={value:?} was accepted"
        );
    }
    for text in [
        "[auth]\napi_keys = [\"\"]\n",
        "[auth]\napi_keys = \"\"\n",
        "[auth]\napi_keys = [\"k\", \" \"]\n",
        "[auth]\nbasic = [\"popbill:\"]\n",
        "[access]\nallow = \"\"\n",
    ] {
        let (_d, p) = file(text);
        let loaded = Config::load(Some(&p), env(&[brokers()]));
        assert!(
            loaded.is_err() || loaded.is_ok_and(|c| check(&c).is_err()),
            "{text:?} was accepted"
        );
    }
}

#[test]
fn kafka_client_errors_name_the_property_and_never_its_value() {
    let with = |props: &[(&str, &str)]| KafkaConfig {
        brokers: "k:9092".into(),
        properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..KafkaConfig::default()
    };
    for (props, property, secret) in [
        (
            &[("sasl.passwrd", "hunter2"), ("sasl.username", "u")][..],
            "sasl.passwrd",
            "hunter2",
        ),
        (&[("linger.ms", "abc")][..], "linger.ms", "abc"),
        // Only librdkafka's client creation sees this combination.
        (
            &[("max.in.flight.requests.per.connection", "77")][..],
            "max.in.flight",
            "77",
        ),
    ] {
        let err = with(props)
            .check_client(Config::default().max_record_bytes())
            .expect_err(property);
        assert!(err.contains(property), "{err}");
        assert!(!err.contains(secret), "value printed: {err}");
    }
    with(&[("linger.ms", "5"), ("security.protocol", "PLAINTEXT")])
        .check_client(Config::default().max_record_bytes())
        .expect("a valid client configuration");
}

#[test]
fn redaction_scrubs_every_value_and_short_ones_only_where_they_stand_alone() {
    let k = KafkaConfig {
        properties: BTreeMap::from([
            ("a".to_string(), "s3cr3t-value".to_string()),
            ("b".to_string(), "1".to_string()),
        ]),
        ..KafkaConfig::default()
    };
    assert_eq!(
        k.redact("x=\"s3cr3t-value\" y=1 range 10..100"),
        "x=\"<redacted>\" y=<redacted> range 10..100"
    );
}

#[test]
fn a_ledger_topic_that_a_route_also_writes_is_refused() {
    for topic in [
        "popbill.unrouted",
        "popbill.taxinvoice.state.issue",
        "custom.topic",
    ] {
        let mut c = Config::default();
        c.kafka.brokers = "k:9092".into();
        c.routes
            .overrides
            .insert("X.Y:Z".into(), "custom.topic".into());
        c.dedup.ledger_topic = topic.into();
        let text = check(&c).expect_err(topic).to_string();
        assert!(
            text.contains("dedup.ledger_topic") && text.contains("is also a delivery topic"),
            "{topic}: {text}"
        );
        c.dedup.enabled = false;
        check(&c).expect("no ledger, no clash");
    }
}

#[test]
fn a_slot_wait_that_leaves_kafka_no_time_before_the_answer_is_due_is_refused() {
    let mut cfg = Config::default();
    cfg.kafka.brokers = "a:1".into();
    check(&cfg).expect("the defaults fit: 500ms + 4s + 250ms <= 5s");
    cfg.limits.inflight_wait = Duration::from_secs(1);
    let text = check(&cfg).expect_err("invalid").to_string();
    assert!(
        text.contains("limits.inflight_wait (1s) plus kafka.message_timeout (4s)")
            && text.contains("server.request_timeout (5s)"),
        "{text}"
    );
}

#[test]
fn a_body_buffer_smaller_than_the_largest_body_is_refused_naming_both_settings() {
    let mut cfg = Config::default();
    cfg.kafka.brokers = "a:1".into();
    cfg.limits.max_body_buffer_bytes = cfg.server.max_body_bytes;
    check(&cfg).expect("room for one body of the largest size is enough");
    cfg.limits.max_body_buffer_bytes = cfg.server.max_body_bytes - 1;
    let text = check(&cfg).expect_err("invalid").to_string();
    assert!(
        text.contains("limits.max_body_buffer_bytes (1048575) must be at least server.max_body_bytes (1048576)"),
        "{text}"
    );
}

#[test]
fn validation_reports_every_problem_with_a_fix() {
    let mut cfg = Config::default();
    cfg.kafka.brokers = "a:1".into();
    cfg.kafka.message_timeout = Duration::from_secs(10);
    cfg.kafka.properties.insert("acks".into(), "1".into());
    cfg.routes.fallback = "__consumer_offsets".into();
    cfg.routes.known.push("NOCOLON".into());
    cfg.server.admin_listen = cfg.server.listen;
    let text = check(&cfg).expect_err("invalid").to_string();
    for needle in [
        "kafka.message_timeout",
        "acks is always",
        "routes.fallback",
        "NOCOLON",
        "admin port must differ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
