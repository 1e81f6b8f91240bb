//! Loading the configuration: the file, the environment laid over it, and
//! each value typed by the setting it sets. (What the parts then check of
//! their sections is tested where they are built: `bridge/tests.rs`.)
use super::*;
use std::path::PathBuf;

pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn brokers() -> (&'static str, &'static str) {
    ("POPBILL_BRIDGE_KAFKA__BROKERS", "k:9092")
}

pub(crate) fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.toml");
    std::fs::write(&p, text).expect("write");
    (dir, p)
}

pub(crate) fn setting<'a>(cfg: &'a Config, name: &str) -> Option<&'a str> {
    cfg.topics.settings.get(name).map(String::as_str)
}

#[test]
fn env_overrides_file_values_with_typed_values() {
    let cfg = Config::load(
        None,
        env(&[
            ("POPBILL_BRIDGE_KAFKA__BROKERS", "k1:9092,k2:9092"),
            ("POPBILL_BRIDGE_SERVER__MAX_BODY_BYTES", "2048"),
            ("POPBILL_BRIDGE_SERVER__REQUEST_TIMEOUT", "9s"),
            ("POPBILL_BRIDGE_TOPICS__CREATE", "false"),
            ("POPBILL_BRIDGE_KAFKA__PROPERTIES__SASL_PASSWORD", "hunter2"),
            ("POPBILL_BRIDGE_CONFIG", "ignored.toml"),
            ("HOME", "/root"),
        ]),
    )
    .expect("loads");
    assert_eq!(cfg.kafka.brokers, "k1:9092,k2:9092");
    assert_eq!(cfg.server.max_body_bytes, 2048);
    assert_eq!(cfg.server.request_timeout, Duration::from_secs(9));
    assert!(!cfg.topics.create);
    assert_eq!(
        cfg.kafka
            .properties
            .get("sasl.password")
            .map(String::as_str),
        Some("hunter2")
    );
    assert!(
        !format!("{cfg:?}").contains("hunter2"),
        "secret leaked into Debug"
    );
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "[server]\nlisten_addr = \"0.0.0.0:1\"\n").expect("write");
    let err = Config::load(Some(&p), env(&[])).expect_err("unknown key");
    assert!(err.to_string().contains("listen_addr"), "{err}");
}

#[test]
fn one_topic_setting_from_file_or_env_keeps_the_other_defaults() {
    let (_d, p) = file("[topics.settings]\n\"retention.ms\" = \"604800000\"\n");
    let cfg = Config::load(Some(&p), env(&[brokers()])).expect("loads");
    assert_eq!(setting(&cfg, "min.insync.replicas"), Some("2"));
    assert_eq!(setting(&cfg, "retention.ms"), Some("604800000"));

    let cfg = Config::load(
        None,
        env(&[
            brokers(),
            ("POPBILL_BRIDGE_TOPICS__SETTINGS__RETENTION_MS", "1000"),
        ]),
    )
    .expect("loads");
    assert_eq!(setting(&cfg, "min.insync.replicas"), Some("2"));
    assert_eq!(setting(&cfg, "retention.ms"), Some("1000"));

    // A default is changed by naming it with another value.
    let (_d, p) = file("[topics.settings]\n\"min.insync.replicas\" = \"1\"\n");
    let cfg = Config::load(Some(&p), env(&[brokers()])).expect("loads");
    assert_eq!(setting(&cfg, "min.insync.replicas"), Some("1"));
    let cfg = Config::load(
        Some(&p),
        env(&[
            brokers(),
            ("POPBILL_BRIDGE_TOPICS__SETTINGS__MIN_INSYNC_REPLICAS", "3"),
        ]),
    )
    .expect("loads");
    assert_eq!(setting(&cfg, "min.insync.replicas"), Some("3"));
}

#[test]
fn env_values_are_typed_by_the_setting_they_set() {
    let cfg = Config::load(
        None,
        env(&[
            brokers(),
            ("POPBILL_BRIDGE_AUTH__API_KEYS", "123456"),
            ("POPBILL_BRIDGE_AUTH__BASIC", "popbill:1234,other:true"),
            ("POPBILL_BRIDGE_AUTH__API_KEY_FILES", "/run/secrets/keys"),
            ("POPBILL_BRIDGE_AUTH__BASIC_FILES", "/run/a, /run/b"),
            (
                "POPBILL_BRIDGE_ACCESS__TRUSTED_PROXIES",
                r#"["10.0.0.0/8", "::1"]"#,
            ),
            ("POPBILL_BRIDGE_ACCESS__ALLOW", "popbill,10.0.0.0/8"),
            ("POPBILL_BRIDGE_ROUTES__KNOWN", "A.B:C"),
            ("POPBILL_BRIDGE_KAFKA__CLIENT_ID", "12345"),
            ("POPBILL_BRIDGE_DEAD_LETTER__TOPIC", "true"),
            ("POPBILL_BRIDGE_SERVER__MAX_BODY_BYTES", "2048"),
            ("POPBILL_BRIDGE_TOPICS__PARTITIONS", "-1"),
            ("POPBILL_BRIDGE_DEDUP__ENABLED", "false"),
            ("POPBILL_BRIDGE_TLS__CERT_FILE", "/tls/crt"),
        ]),
    )
    .expect("loads");
    assert_eq!(cfg.auth.api_keys, vec!["123456"]);
    assert_eq!(cfg.auth.basic, vec!["popbill:1234", "other:true"]);
    assert_eq!(
        cfg.auth.api_key_files,
        vec![PathBuf::from("/run/secrets/keys")]
    );
    assert_eq!(
        cfg.auth.basic_files,
        vec![PathBuf::from("/run/a"), PathBuf::from("/run/b")]
    );
    assert_eq!(cfg.access.allow, vec!["popbill", "10.0.0.0/8"]);
    assert_eq!(cfg.access.trusted_proxies, vec!["10.0.0.0/8", "::1"]);
    assert_eq!(cfg.routes.known, vec!["A.B:C"]);
    assert_eq!(cfg.kafka.client_id, "12345");
    assert_eq!(cfg.dead_letter.topic, "true");
    assert_eq!(cfg.server.max_body_bytes, 2048);
    assert_eq!(cfg.topics.partitions, -1);
    assert!(!cfg.dedup.enabled);
    assert_eq!(cfg.tls.cert_file, Some(PathBuf::from("/tls/crt")));
}

#[test]
fn an_env_value_that_does_not_fit_its_setting_names_the_variable() {
    for (name, value) in [
        ("POPBILL_BRIDGE_SERVER__MAX_BODY_BYTES", "lots"),
        ("POPBILL_BRIDGE_TOPICS__CREATE", "yes-please"),
        ("POPBILL_BRIDGE_SERVER__LISTN", "0.0.0.0:1"),
        ("POPBILL_BRIDGE_KAFKA__PROPERTIES", "x"),
        ("POPBILL_BRIDGE_AUTH__API_KEYS", "[1, 2]"),
    ] {
        let err = Config::load(None, env(&[brokers(), (name, value)]))
            .expect_err(name)
            .to_string();
        assert!(err.contains(name), "{name}: {err}");
        assert!(!err.contains(value), "{name}: value printed: {err}");
    }
}
