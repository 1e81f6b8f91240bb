use super::*;

use hyper::header::HeaderValue;

use crate::receipt::Receipt;

/// What the log lines written while `f` runs say, as text.
fn logged_while(f: impl FnOnce()) -> String {
    let log = crate::telemetry::captured_log::CapturedLog::start();
    f();
    log.text()
}

/// The longest run of `c` in `text`.
fn longest_run(text: &str, c: char) -> usize {
    text.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

/// Issue #23: 450 MIDs of 15,000 bytes made a 7 MB log. What a sender
/// chose (MID, webhook and event type) takes at most 128 bytes of a line.
#[test]
fn a_senders_mid_and_types_take_at_most_128_bytes_of_a_log_line() {
    let metrics = Metrics::new(&[]);
    let mut headers = HeaderMap::new();
    let mid = "m".repeat(15_000);
    headers.insert(
        "pb-webhook-mid",
        HeaderValue::from_str(&mid).expect("ascii"),
    );
    headers.insert(
        "pb-webhook-type",
        HeaderValue::from_str(&"t".repeat(15_000)).expect("ascii"),
    );
    headers.insert(
        "pb-webhook-eventtype",
        HeaderValue::from_str(&"e".repeat(15_000)).expect("ascii"),
    );
    let body = br#"{"corpNum":"1"}"#;
    let delivery = Delivery::raw(&headers, body);
    let route = &crate::route::numbered(&["t"])[0];
    let receipt = Receipt::from_report(0, 1).expect("a real offset");
    let text = logged_while(|| {
        rejected(
            &metrics,
            Some(&headers),
            &BridgeError::EmptyBody,
            Duration::ZERO,
        );
        acknowledged(&metrics, route, &delivery, &mid, receipt, Duration::ZERO);
        duplicate(&metrics, route, &delivery, &mid, false, Duration::ZERO);
        failed(
            &metrics,
            route,
            &delivery,
            &mid,
            &BridgeError::PublishTimeout,
            Duration::ZERO,
        );
        dedup_conflict(&metrics, &mid, 1, 2, 3);
    });
    assert_eq!(text.lines().count(), 5, "{text}");
    for (c, what) in [('m', "MID"), ('t', "webhook type"), ('e', "event type")] {
        let run = longest_run(&text, c);
        assert!(run <= 128, "{what}: {run} bytes in a line");
    }
    assert!(
        longest_run(&text, 'm') == 128,
        "the MID's first 128 bytes are kept"
    );
}

/// A field name means one thing: `mid` is the header as sent (a rejected
/// request's only name), `ce_id` the record's id (what a delivery that
/// got past the checks is known by) — never the one under the other's
/// name.
#[test]
fn mid_names_the_header_and_ce_id_the_record_id_in_every_delivery_line() {
    let metrics = Metrics::new(&[]);
    let mut headers = HeaderMap::new();
    headers.insert("pb-webhook-mid", HeaderValue::from_static("header-mid"));
    headers.insert(
        "pb-webhook-type",
        HeaderValue::from_static("TAXINVOICE.STATE"),
    );
    let delivery = Delivery::raw(&headers, b"{}");
    let route = &crate::route::numbered(&["t"])[0];
    let receipt = Receipt::from_report(0, 1).expect("a real offset");
    let id = "content:record-id";
    let text = logged_while(|| {
        rejected(
            &metrics,
            Some(&headers),
            &BridgeError::EmptyBody,
            Duration::ZERO,
        );
        acknowledged(&metrics, route, &delivery, id, receipt, Duration::ZERO);
        duplicate(&metrics, route, &delivery, id, false, Duration::ZERO);
        failed(
            &metrics,
            route,
            &delivery,
            id,
            &BridgeError::PublishTimeout,
            Duration::ZERO,
        );
    });
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].contains("mid=\"header-mid\""), "{}", lines[0]);
    for line in &lines[1..] {
        assert!(line.contains("ce_id=\"content:record-id\""), "{line}");
        assert!(!line.contains(" mid="), "{line}");
    }
}
