use super::*;
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h
}

const BODY: &[u8] = br#"{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,"stateDT":"20251114093010","eventType":"Issue"}"#;

#[test]
fn the_mid_is_the_identity_whatever_the_body() {
    let h = headers(&[
        ("pb-webhook-type", "TAXINVOICE.STATE"),
        ("pb-webhook-mid", "m-1"),
    ]);
    let a = Identity::of(
        &Delivery::parse(&h, BODY).expect("valid"),
        Namespace::Routed,
        "t",
    );
    let b = Identity::of(
        &Delivery::parse(&h, b"{}").expect("valid"),
        Namespace::Routed,
        "t",
    );
    assert_eq!(a.source, Source::Mid);
    assert_eq!(a.id, "m-1");
    assert_eq!(a.digest, b.digest);
    let h2 = headers(&[
        ("pb-webhook-type", "TAXINVOICE.STATE"),
        ("pb-webhook-mid", "m-2"),
    ]);
    assert_ne!(
        a.digest,
        Identity::of(
            &Delivery::parse(&h2, BODY).expect("valid"),
            Namespace::Routed,
            "t"
        )
        .digest
    );
}

#[test]
fn without_mid_the_content_key_ignores_unrelated_fields() {
    let h = headers(&[("pb-webhook-type", "TAXINVOICE.STATE")]);
    let a = Identity::of(
        &Delivery::parse(&h, BODY).expect("valid"),
        Namespace::Routed,
        "t",
    );
    assert_eq!(a.source, Source::Content);
    assert!(
        a.id.starts_with("content:") && a.id.len() == 8 + 32,
        "{}",
        a.id
    );
    let reordered = br#"{"eventDT":"20251114093011","stateDT":"20251114093010","stateCode":"300","itemKey":"025111409301000001","corpNum":"1234567890","eventType":"Issue"}"#;
    let b = Identity::of(
        &Delivery::parse(&h, reordered).expect("valid"),
        Namespace::Routed,
        "t",
    );
    assert_eq!(a.digest, b.digest, "same state change, same identity");
    let later = br#"{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":304,"stateDT":"20251115090711","eventType":"NTS"}"#;
    assert_ne!(
        a.digest,
        Identity::of(
            &Delivery::parse(&h, later).expect("valid"),
            Namespace::Routed,
            "t"
        )
        .digest
    );
}

#[test]
fn without_content_fields_the_body_is_the_identity() {
    let h = headers(&[("pb-webhook-type", "KAKAO.STATE")]);
    let a = Identity::of(
        &Delivery::parse(&h, br#"{"receiptNum":"1"}"#).expect("valid"),
        Namespace::Routed,
        "t",
    );
    assert_eq!(a.source, Source::Body);
    assert!(a.id.starts_with("sha256:"));
    let b = Identity::of(
        &Delivery::parse(&h, br#"{"receiptNum":"2"}"#).expect("valid"),
        Namespace::Routed,
        "t",
    );
    assert_ne!(a.digest, b.digest);
}

#[test]
fn the_id_without_hashing_is_the_id_of_the_full_identity() {
    for (pairs, body) in [
        (
            &[
                ("pb-webhook-type", "TAXINVOICE.STATE"),
                ("pb-webhook-mid", "m-1"),
            ][..],
            BODY,
        ),
        (&[("pb-webhook-type", "TAXINVOICE.STATE")][..], BODY),
        (
            &[("pb-webhook-type", "KAKAO.STATE")][..],
            &br#"{"receiptNum":"1"}"#[..],
        ),
    ] {
        let h = headers(pairs);
        let d = Delivery::parse(&h, body).expect("valid");
        for ns in [Namespace::Routed, Namespace::DeadLetter] {
            assert_eq!(Identity::id_of(&d, ns, "t"), Identity::of(&d, ns, "t").id);
        }
    }
}

#[test]
fn parts_are_separated() {
    assert_ne!(claim_digest(&[b"ab", b"c"]), claim_digest(&[b"a", b"bc"]));
    assert_ne!(id_digest(&[b"ab", b"c"]), id_digest(&[b"a", b"bc"]));
}

fn content_identity(corp: &str, item: &str) -> (u128, Source) {
    let h = headers(&[("pb-webhook-type", "TAXINVOICE.STATE")]);
    let body = serde_json::json!({
        "corpNum": corp, "itemKey": item, "stateCode": 300,
        "stateDT": "20251114093010", "eventType": "Issue"
    })
    .to_string();
    let id = Identity::of(
        &Delivery::parse(&h, body.as_bytes()).expect("valid"),
        Namespace::Routed,
        "t",
    );
    (id.digest, id.source)
}

#[test]
fn content_keys_whose_fields_hold_nul_bytes_do_not_collide() {
    let a = content_identity("a\0", "b");
    let b = content_identity("a", "\0b");
    assert_eq!((a.1, b.1), (Source::Content, Source::Content));
    assert_ne!(a.0, b.0, "framing keeps the parts apart");
}

#[test]
fn the_webhook_type_is_part_of_a_mid_identity() {
    let tax = headers(&[
        ("pb-webhook-type", "TAXINVOICE.STATE"),
        ("pb-webhook-mid", "m-1"),
    ]);
    let cash = headers(&[
        ("pb-webhook-type", "CASHBILL.STATE"),
        ("pb-webhook-mid", "m-1"),
    ]);
    let a = Identity::of(
        &Delivery::parse(&tax, BODY).expect("valid"),
        Namespace::Routed,
        "t",
    );
    let b = Identity::of(
        &Delivery::parse(&cash, BODY).expect("valid"),
        Namespace::Routed,
        "t",
    );
    assert_ne!(a.digest, b.digest);
}

#[test]
fn the_body_digest_tells_a_copy_from_a_different_body() {
    let h = headers(&[
        ("pb-webhook-type", "TAXINVOICE.STATE"),
        ("pb-webhook-mid", "m-1"),
    ]);
    let genuine = Identity::of(
        &Delivery::parse(&h, BODY).expect("valid"),
        Namespace::Routed,
        "t",
    );
    let again = Identity::of(
        &Delivery::parse(&h, BODY).expect("valid"),
        Namespace::Routed,
        "t",
    );
    let junk = Identity::of(
        &Delivery::parse(&h, b"{}").expect("valid"),
        Namespace::Routed,
        "t",
    );
    assert_eq!(genuine.digest, junk.digest, "the same claimed identity");
    assert_eq!(genuine.body, again.body);
    assert_ne!(genuine.body, junk.body);
}

#[test]
fn the_same_event_routed_to_another_topic_is_another_claim() {
    let h = headers(&[("pb-webhook-type", "FAX.STATE"), ("pb-webhook-mid", "m-1")]);
    let d = Delivery::parse(&h, BODY).expect("valid");
    let fallback = Identity::of(&d, Namespace::Routed, "popbill.unrouted");
    let routed = Identity::of(&d, Namespace::Routed, "popbill.fax.state.result");
    assert_ne!(fallback.digest, routed.digest);
}

#[test]
fn a_dead_letter_identity_never_equals_a_routed_one() {
    let h = headers(&[
        ("pb-webhook-type", "TAXINVOICE.STATE"),
        ("pb-webhook-mid", "m-1"),
    ]);
    let d = Delivery::parse(&h, BODY).expect("valid");
    let routed = Identity::of(&d, Namespace::Routed, "t");
    let dead = Identity::of(&d, Namespace::DeadLetter, "t");
    assert_ne!(routed.digest, dead.digest);
    assert_eq!(routed.id, dead.id, "the record's ce_id is still the MID");
}

#[test]
fn an_event_without_a_mid_keeps_its_ce_id_on_every_topic_and_in_the_dead_letters() {
    // Before: the ce_id of an event without a MID was its claim's digest,
    // which holds the topic and namespace: re-driven from the fallback to
    // its route, the same event got a second ce_id, and consumers that
    // deduplicate by ce_id saw two events.
    for (pairs, body) in [
        (&[("pb-webhook-type", "TAXINVOICE.STATE")][..], BODY),
        (
            &[("pb-webhook-type", "KAKAO.STATE")][..],
            &br#"{"receiptNum":"1"}"#[..],
        ),
    ] {
        let h = headers(pairs);
        let d = Delivery::parse(&h, body).expect("valid");
        let fallback = Identity::of(&d, Namespace::Routed, "popbill.unrouted");
        let routed = Identity::of(&d, Namespace::Routed, "popbill.kakao.state.result");
        let dead = Identity::of(&d, Namespace::DeadLetter, "popbill.dead-letter");
        assert_eq!(fallback.id, routed.id);
        assert_eq!(fallback.id, dead.id);
        // Still one claim per topic, so that a re-drive publishes it again.
        assert_ne!(fallback.digest, routed.digest);
    }
}
