use super::*;

#[test]
fn popbill_counts_only_ok_bodies_with_200() {
    assert!(popbill_accepts(200, b"OK"));
    assert!(popbill_accepts(200, br#"{"result":"OK"}"#));
    assert!(popbill_accepts(200, br#"{ "result" : "OK" }"#));
    for (status, body) in [
        (200, &b""[..]),
        (200, b"ok"),
        (200, b"OK\n"),
        (200, b"\"OK\""),
        (200, br#"{"result":"ok"}"#),
        (200, br#"{"result":"OK","x":1}"#),
        (202, b"OK"),
        (204, b""),
        (503, b"OK"),
    ] {
        assert!(!popbill_accepts(status, body), "{status} {body:?}");
    }
}

#[test]
fn base64_matches_rfc4648() {
    for (plain, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("popbill:s3cret", "cG9wYmlsbDpzM2NyZXQ="),
    ] {
        assert_eq!(base64(plain.as_bytes()), enc);
    }
    assert_eq!(
        basic_authorization("popbill:s3cret"),
        "Basic cG9wYmlsbDpzM2NyZXQ="
    );
}

#[test]
fn urls_are_parsed_with_their_defaults() {
    let t = Target::parse("https://hooks.example.com/popbill/webhook").expect("url");
    assert!(t.https && t.port == 443 && t.popbill_port());
    assert_eq!(t.host, "hooks.example.com");
    assert_eq!(t.path_and_query, "/popbill/webhook");
    let t = Target::parse("http://[::1]:9854").expect("url");
    assert_eq!(
        (t.host.as_str(), t.port, t.path_and_query.as_str()),
        ("::1", 9854, "/")
    );
    assert_eq!(t.authority, "[::1]:9854");
    assert!(Target::parse("ftp://x/").is_err());
    assert!(Target::parse("hooks.example.com/popbill").is_err());
    assert!(Target::parse("https://u:p@x/").is_err());
}

#[test]
fn fresh_mids_look_like_popbills_and_differ() {
    let (a, b) = (fresh_mid(), fresh_mid());
    assert_ne!(a, b);
    let (digits, hex) = a.split_once('-').expect("dash");
    assert_eq!(digits.len(), 12);
    assert!(digits.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(hex.len(), 23);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn headers_are_replaced_in_place() {
    let mut d = Delivery::from_sample(&samples::find("taxinvoice-issue").expect("sample"));
    let before = d.headers.len();
    d.set_header("pb-webhook-mid", "m-1");
    assert_eq!(d.mid(), Some("m-1"));
    assert_eq!(d.headers.len(), before);
    d.set_header("X-Api-Key", "k");
    assert_eq!(d.headers.len(), before + 1);
}
