use super::*;
use crate::commands::samples;

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
