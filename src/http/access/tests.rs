use super::*;
use hyper::header::HeaderValue;

fn access(allow: &[&str], proxies: &[&str]) -> Access {
    access_via(allow, proxies, "x-forwarded-for")
}

fn access_via(allow: &[&str], proxies: &[&str], header: &str) -> Access {
    Access::new(&AccessConfig {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        trusted_proxies: proxies.iter().map(|s| s.to_string()).collect(),
        client_ip_header: header.into(),
    })
    .expect("valid")
}

fn h(name: &'static str, v: &str) -> HeaderMap {
    let mut m = HeaderMap::new();
    m.insert(
        HeaderName::from_static(name),
        HeaderValue::from_str(v).expect("v"),
    );
    m
}

fn peer(s: &str) -> SocketAddr {
    SocketAddr::new(s.parse().expect("ip"), 40000)
}

#[test]
fn the_popbill_preset_allows_its_two_addresses_only() {
    let a = access(&["popbill"], &[]);
    assert_eq!(
        a.check("54.180.62.221".parse().expect("ip")),
        SourceCheck::Allowed
    );
    assert_eq!(
        a.check("13.124.72.158".parse().expect("ip")),
        SourceCheck::Allowed
    );
    assert_eq!(
        a.check("54.180.62.222".parse().expect("ip")),
        SourceCheck::Denied
    );
    assert_eq!(
        a.check("::ffff:54.180.62.221".parse().expect("ip")),
        SourceCheck::Allowed
    );
    assert_eq!(
        access(&[], &[]).check("1.2.3.4".parse().expect("ip")),
        SourceCheck::NotConfigured
    );
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let a = access(&["popbill"], &["10.0.0.0/8"]);
    let spoof = h("x-forwarded-for", "54.180.62.221");
    // From an untrusted peer, the header is ignored.
    let c = a.client(peer("203.0.113.9"), &spoof);
    assert_eq!(c, "203.0.113.9".parse::<IpAddr>().expect("ip"));
    assert_eq!(a.check(c), SourceCheck::Denied);
    // Through our ingress, it is believed.
    let c = a.client(peer("10.1.2.3"), &spoof);
    assert_eq!(a.check(c), SourceCheck::Allowed);
}

#[test]
fn the_client_is_the_right_most_untrusted_hop() {
    let a = access(&["popbill"], &["10.0.0.0/8"]);
    // The client prepended a fake address; the ingress appended the
    // real one it saw.
    let chain = h("x-forwarded-for", "54.180.62.221, 198.51.100.7, 10.0.0.5");
    let c = a.client(peer("10.0.0.6"), &chain);
    assert_eq!(c, "198.51.100.7".parse::<IpAddr>().expect("ip"));
    assert_eq!(a.check(c), SourceCheck::Denied);
}

#[test]
fn rfc7239_forwarded_is_understood() {
    let a = access_via(&["popbill"], &["10.0.0.0/8"], "Forwarded");
    let f = h(
        "forwarded",
        r#"for="[2001:db8::1]:4711";proto=https, for=13.124.72.158"#,
    );
    let c = a.client(peer("10.9.9.9"), &f);
    assert_eq!(c, "13.124.72.158".parse::<IpAddr>().expect("ip"));
    let unknown = h("forwarded", "for=unknown");
    assert_eq!(
        a.client(peer("10.9.9.9"), &unknown),
        "10.9.9.9".parse::<IpAddr>().expect("ip")
    );
}

#[test]
fn client_forwarded_header_is_ignored_when_xff_is_configured() {
    // The default: X-Forwarded-For, which ingress-nginx, AWS ALB and
    // Envoy write. A `Forwarded` header they pass through untouched was
    // written by the client and proves nothing.
    let a = access(&["popbill"], &["10.0.0.0/8"]);
    let mut m = h("x-forwarded-for", "198.51.100.7");
    m.insert(FORWARDED, HeaderValue::from_static("for=54.180.62.221"));
    let c = a.client(peer("10.0.0.6"), &m);
    assert_eq!(c, "198.51.100.7".parse::<IpAddr>().expect("ip"));
    assert_eq!(a.check(c), SourceCheck::Denied);
    // No X-Forwarded-For at all: no fallback to `Forwarded` either; the
    // client is the proxy itself.
    let only_forwarded = h("forwarded", "for=54.180.62.221");
    assert_eq!(
        a.client(peer("10.0.0.6"), &only_forwarded),
        "10.0.0.6".parse::<IpAddr>().expect("ip")
    );
}

#[test]
fn the_configured_header_is_the_only_one_read() {
    let mut m = h("x-forwarded-for", "54.180.62.221");
    m.insert(FORWARDED, HeaderValue::from_static("for=13.124.72.158"));
    m.insert(
        HeaderName::from_static("x-real-ip"),
        HeaderValue::from_static("198.51.100.7"),
    );
    let via = |header| access_via(&["popbill"], &["10.0.0.0/8"], header);
    let from = |a: &Access| a.client(peer("10.0.0.6"), &m).to_string();
    assert_eq!(from(&via("x-forwarded-for")), "54.180.62.221");
    assert_eq!(from(&via("forwarded")), "13.124.72.158");
    assert_eq!(from(&via("X-Real-IP")), "198.51.100.7");
    // Configured `forwarded`, sent only X-Forwarded-For: no fallback.
    let xff_only = h("x-forwarded-for", "54.180.62.221");
    assert_eq!(
        via("forwarded").client(peer("10.0.0.6"), &xff_only),
        "10.0.0.6".parse::<IpAddr>().expect("ip")
    );
    let err = Access::new(&AccessConfig {
        client_ip_header: "x forwarded".into(),
        ..AccessConfig::default()
    })
    .expect_err("invalid")
    .join("; ");
    assert!(err.contains("access.client_ip_header"), "{err}");
}

#[test]
fn the_verdict_is_known_at_accept_unless_the_peer_is_a_trusted_proxy() {
    let a = access(&["popbill"], &["10.0.0.0/8"]);
    assert_eq!(
        a.verdict_at_accept(peer("203.0.113.9")),
        Some(SourceCheck::Denied)
    );
    assert_eq!(
        a.verdict_at_accept(peer("54.180.62.221")),
        Some(SourceCheck::Allowed)
    );
    assert_eq!(a.verdict_at_accept(peer("10.1.2.3")), None);
    assert_eq!(
        access(&[], &[]).verdict_at_accept(peer("203.0.113.9")),
        Some(SourceCheck::NotConfigured)
    );
}

#[test]
fn bad_networks_are_named() {
    let err = Access::new(&AccessConfig {
        allow: vec!["10.0.0.0/33".into()],
        ..AccessConfig::default()
    })
    .expect_err("invalid")
    .join("; ");
    assert!(
        err.contains("access.allow") && err.contains("10.0.0.0/33"),
        "{err}"
    );
}
