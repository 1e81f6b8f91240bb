//! Fuzzes the part of the bridge that reads what a sender controls: the
//! `Pb-Webhook-*` headers and the body, through parsing, identity, routing
//! and record headers. Besides "never panics", it checks that whatever the
//! bridge accepts is valid JSON with an object at the top (serde_json as
//! the oracle) and that every route names a legal, configured topic.
#![no_main]

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

use popbill_bridge::config::{CloudEventsConfig, RoutesConfig};
use popbill_bridge::delivery::Delivery;
use popbill_bridge::identity::Identity;
use popbill_bridge::record;
use popbill_bridge::route::{Router, check_topic_name};

const NAMES: [&str; 4] = [
    "pb-webhook-type",
    "pb-webhook-mid",
    "pb-webhook-corpnum",
    "pb-webhook-eventtype",
];

fuzz_target!(|data: &[u8]| {
    // Layout: up to four NUL-terminated header values, then the body.
    let mut headers = HeaderMap::new();
    let mut rest = data;
    for name in NAMES {
        let Some(end) = rest.iter().position(|&b| b == 0) else { break };
        if let Ok(v) = HeaderValue::from_bytes(&rest[..end]) {
            headers.insert(HeaderName::from_static(name), v);
        }
        rest = &rest[end + 1..];
    }
    let body = rest;
    let Ok(delivery) = Delivery::parse(&headers, body) else {
        let _ = Delivery::raw(&headers, body);
        return;
    };
    // JSON syntax (RFC 8259) as the oracle. Not `serde_json::Value`: it
    // also refuses numbers beyond f64's range such as 3e888, which are
    // valid JSON — the fuzzer found that the bridge rightly forwards them.
    serde_json::from_slice::<serde::de::IgnoredAny>(body).expect("accepted bodies are valid JSON");
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    assert_eq!(first, Some(&b'{'), "accepted bodies are JSON objects");

    let router = Router::from_config(&RoutesConfig::default()).expect("default routes");
    let route = router.route(delivery.webhook_type, delivery.event_type.as_deref());
    assert!(check_topic_name(&route.topic).is_ok());
    assert!(router.routes().iter().any(|r| r.topic == route.topic));

    let identity = Identity::of(&delivery);
    let _ = delivery.key();
    let _ = record::headers(
        &headers,
        &delivery,
        &identity.id,
        &CloudEventsConfig::default(),
        std::time::SystemTime::now(),
    );
});
