//! The bridge's `/metrics`: a reader for the Prometheus text format and the
//! series the tests look at most.

use super::bridge::Listeners;
use super::http::get;

/// Sum of every sample of `name` whose labels include all of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            if all { value.parse::<f64>().ok() } else { None }
        })
        .sum()
}

pub async fn metrics_text(bridge: &impl Listeners) -> String {
    get(bridge.admin(), "/metrics").await.1
}

/// [`metric`] of a fresh scrape of `bridge`.
pub async fn scrape(bridge: &impl Listeners, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric(&metrics_text(bridge).await, name, labels)
}

/// `popbill_bridge_deliveries_total{outcome}`, summed over event types.
pub async fn deliveries(bridge: &impl Listeners, outcome: &str) -> f64 {
    scrape(
        bridge,
        "popbill_bridge_deliveries_total",
        &[("outcome", outcome)],
    )
    .await
}

/// `popbill_bridge_rejections_total{reason}`.
pub async fn rejections(bridge: &impl Listeners, reason: &str) -> f64 {
    scrape(
        bridge,
        "popbill_bridge_rejections_total",
        &[("reason", reason)],
    )
    .await
}

/// `popbill_bridge_http_errors_total{kind}`.
pub async fn http_errors(bridge: &impl Listeners, kind: &str) -> f64 {
    scrape(
        bridge,
        "popbill_bridge_http_errors_total",
        &[("kind", kind)],
    )
    .await
}
