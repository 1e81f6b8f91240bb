//! Docs that cannot drift: every rejection and failure reason, every metric
//! and every configuration key the code has must appear in `docs/`. Runs
//! with plain `cargo test` (no broker).

use std::collections::BTreeSet;
use std::path::Path;

use popbill_bridge::config::Config;
use popbill_bridge::route::{DeadLetterConfig, Router, RoutesConfig};
use popbill_bridge::telemetry::labels::{FailReason, HttpErrorKind, Outcome, RejectReason};
use popbill_bridge::telemetry::metrics::Metrics;

fn doc(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn missing<'a>(text: &str, wanted: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    wanted
        .into_iter()
        .filter(|w| !text.contains(&format!("`{w}`")) && !text.contains(&format!("\"{w}\"")))
        .collect()
}

#[test]
fn every_rejection_and_failure_reason_is_in_the_answers_doc() {
    let answers = doc("answers.md");
    let reasons = RejectReason::ALL
        .iter()
        .map(|r| r.as_str())
        .chain(FailReason::ALL.iter().map(|r| r.as_str()));
    let gone = missing(&answers, reasons);
    assert!(gone.is_empty(), "docs/answers.md lacks reasons {gone:?}");
}

#[test]
fn every_label_value_is_in_the_metrics_doc() {
    let metrics = doc("metrics.md");
    let labels = Outcome::ALL
        .iter()
        .map(|o| o.as_str())
        .chain(HttpErrorKind::ALL.iter().map(|k| k.as_str()))
        .chain(FailReason::ALL.iter().map(|r| r.as_str()));
    let gone = missing(&metrics, labels);
    assert!(
        gone.is_empty(),
        "docs/metrics.md lacks label values {gone:?}"
    );
}

#[test]
fn every_metric_is_in_the_metrics_doc() {
    let router = Router::new(&RoutesConfig::default(), &DeadLetterConfig::default())
        .expect("default routes");
    let text = String::from_utf8(Metrics::new(router.routes()).render()).expect("utf8");
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.len() > 20,
        "the registry exposes its metrics: {names:?}"
    );
    let metrics = doc("metrics.md");
    let gone = missing(&metrics, names.iter().copied());
    assert!(gone.is_empty(), "docs/metrics.md lacks metrics {gone:?}");
}

/// Every `section.key` of the configuration; maps whose keys are the
/// user's (Kafka properties, topic settings, route overrides) count as one.
fn config_keys() -> Vec<String> {
    const MAPS: &[&str] = &["kafka.properties", "topics.settings", "routes.overrides"];
    // JSON keeps unset optional settings (as null); TOML would drop them.
    let table = serde_json::to_value(Config::default()).expect("the defaults serialise");
    let mut out = Vec::new();
    let Some(sections) = table.as_object() else {
        panic!("the configuration is a table")
    };
    for (section, keys) in sections {
        let Some(keys) = keys.as_object() else {
            out.push(section.clone());
            continue;
        };
        for key in keys.keys() {
            let name = format!("{section}.{key}");
            out.push(name);
        }
        for map in MAPS
            .iter()
            .filter(|m| m.starts_with(&format!("{section}.")))
        {
            if !out.iter().any(|k| k == map) {
                out.push(map.to_string());
            }
        }
    }
    out
}

#[test]
fn every_configuration_key_is_in_the_configuration_doc() {
    let keys = config_keys();
    assert!(keys.len() > 40, "{keys:?}");
    let configuration = doc("configuration.md");
    let gone = missing(&configuration, keys.iter().map(String::as_str));
    assert!(
        gone.is_empty(),
        "docs/configuration.md lacks settings {gone:?}"
    );
}
