use super::*;
use hyper::header::{HeaderName, HeaderValue};
use rdkafka::message::Headers;

#[test]
fn event_time_is_converted_from_korean_time() {
    assert_eq!(
        korean_datetime_to_rfc3339("20251114093011").as_deref(),
        Some("2025-11-14T09:30:11+09:00")
    );
    for bad in [
        "20251114",
        "2025111409301x",
        "20251314093011",
        "20251114253011",
        "",
    ] {
        assert_eq!(korean_datetime_to_rfc3339(bad), None, "{bad}");
    }
}

#[test]
fn impossible_event_dates_fall_back_to_the_receive_time() {
    // Real calendar dates are converted, leap days included.
    for (ok, want) in [
        ("20240229120000", "2024-02-29T12:00:00+09:00"),
        ("20000229000000", "2000-02-29T00:00:00+09:00"),
        ("20251231235959", "2025-12-31T23:59:59+09:00"),
    ] {
        assert_eq!(
            korean_datetime_to_rfc3339(ok).as_deref(),
            Some(want),
            "{ok}"
        );
    }
    // Dates that never existed are not written as if they had.
    for bad in [
        "20250229120000", // Feb 29 in a non-leap year
        "19000229120000", // 1900 is not a leap year (century rule)
        "20250230120000", // Feb 30
        "20250231120000", // Feb 31
        "20250431120000", // Apr 31
        "20251301120000", // month 13
        "20250001120000", // month 0
        "20250100120000", // day 0
        "20250101240000", // hour 24
        "20250101126000", // minute 60
        "20250101120060", // second 60
    ] {
        assert_eq!(korean_datetime_to_rfc3339(bad), None, "{bad}");
    }
    // In the record, ce_time is then the receive time.
    let mut req = HeaderMap::new();
    req.insert(
        HeaderName::from_static("pb-webhook-type"),
        HeaderValue::from_static("TAXINVOICE.STATE"),
    );
    let body = br#"{"eventDT":"20250231120000"}"#;
    let d = Delivery::parse(&req, body).expect("valid");
    let h = headers(
        &req,
        &d,
        "mid-1",
        &CloudEventsConfig::default(),
        SystemTime::UNIX_EPOCH,
    );
    let ce_time = h
        .iter()
        .find(|h| h.key == "ce_time")
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned());
    assert_eq!(ce_time.as_deref(), Some("1970-01-01T00:00:00.000Z"));
}

#[test]
fn headers_carry_popbill_headers_and_cloudevents_but_no_credentials() {
    let mut req = HeaderMap::new();
    for (k, v) in [
        ("content-type", "application/json"),
        ("pb-webhook-type", "TAXINVOICE.STATE"),
        ("pb-webhook-mid", "mid-1"),
        ("pb-webhook-eventtype", "Issue"),
        ("pb-custom-tenant", "acme"),
        ("authorization", "Basic cG9wYmlsbDpzM2NyZXQ="),
        ("x-api-key", "example-api-key"),
        ("host", "bridge"),
        ("ce_id", "forged"),
        ("popbill-bridge-received-at", "forged"),
    ] {
        req.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    let body = br#"{"itemKey":"k1","eventDT":"20251114093011"}"#;
    let d = Delivery::parse(&req, body).expect("valid");
    let h = headers(
        &req,
        &d,
        "mid-1",
        &CloudEventsConfig::default(),
        SystemTime::UNIX_EPOCH,
    );
    let got: Vec<(String, String)> = h
        .iter()
        .map(|h| {
            (
                h.key.to_string(),
                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    let get = |k: &str| -> Vec<&str> {
        got.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("pb-webhook-mid"), ["mid-1"]);
    assert_eq!(get("pb-custom-tenant"), ["acme"]);
    assert_eq!(get("content-type"), ["application/json"]);
    assert_eq!(get("ce_id"), ["mid-1"]);
    assert_eq!(get("ce_specversion"), ["1.0"]);
    assert_eq!(
        get("ce_type"),
        ["com.popbill.webhook.TAXINVOICE.STATE.Issue"]
    );
    assert_eq!(get("ce_time"), ["2025-11-14T09:30:11+09:00"]);
    assert_eq!(get("ce_subject"), ["k1"]);
    assert_eq!(get(RECEIVED_AT), ["1970-01-01T00:00:00.000Z"]);
    for (name, value) in &got {
        assert!(
            !name.eq_ignore_ascii_case("authorization") && !name.eq_ignore_ascii_case("x-api-key")
        );
        assert!(!value.contains("cG9wYmlsbDpzM2NyZXQ") && !value.contains("example-api-key"));
        assert_ne!(value, "forged");
        assert_ne!(name, "host");
    }
}

#[test]
fn the_receive_time_is_humantimes_rfc3339_with_milliseconds() {
    let mut req = HeaderMap::new();
    req.insert(
        HeaderName::from_static("pb-webhook-type"),
        HeaderValue::from_static("T"),
    );
    let d = Delivery::parse(&req, br#"{"eventDT":"x"}"#).expect("valid");
    for ms in [
        0u64,
        1,
        999,
        1_763_080_211_123,
        951_782_400_000,
        253_402_300_799_999,
    ] {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        let h = headers(&req, &d, "m", &CloudEventsConfig::default(), at);
        let want = humantime::format_rfc3339_millis(at).to_string();
        for name in [RECEIVED_AT, "ce_time"] {
            let got = h
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned());
            assert_eq!(got.as_deref(), Some(want.as_str()), "{name} at {ms} ms");
        }
    }
}

#[test]
fn a_long_type_is_cut_to_100_characters() {
    let mut req = HeaderMap::new();
    req.insert(
        HeaderName::from_static("pb-webhook-type"),
        HeaderValue::from_static("T"),
    );
    let body = format!(r#"{{"eventType":"{}"}}"#, "E".repeat(150));
    let d = Delivery::parse(&req, body.as_bytes()).expect("valid");
    let t = ce_type(&CloudEventsConfig::default(), &d);
    assert_eq!(t, format!("com.popbill.webhook.T.{}", "E".repeat(100)));
}

#[test]
fn ce_type_never_carries_odd_characters() {
    let mut req = HeaderMap::new();
    req.insert(
        HeaderName::from_static("pb-webhook-type"),
        HeaderValue::from_static("T"),
    );
    let d = Delivery::parse(&req, br#"{"eventType":"../../__consumer offsets\n"}"#).expect("valid");
    let t = ce_type(&CloudEventsConfig::default(), &d);
    assert_eq!(t, "com.popbill.webhook.T..._..___consumer_offsets_");
}
