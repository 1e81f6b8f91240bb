use super::*;
use hyper::header::HeaderValue;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

const ISSUE: &str = r#"{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,"eventDT":"20251114093011","eventType":"Issue"}"#;

#[test]
fn header_names_are_case_insensitive_and_headers_win() {
    let h = headers(&[
        ("PB-WEBHOOK-TYPE", "TAXINVOICE.STATE"),
        ("pb-webhook-mid", "m-1"),
        ("Pb-Webhook-Corpnum", "9999999999"),
        ("Pb-Webhook-EventType", "NTS"),
    ]);
    let d = Delivery::parse(&h, ISSUE.as_bytes()).expect("valid");
    assert_eq!(d.webhook_type, "TAXINVOICE.STATE");
    assert_eq!(d.mid, Some("m-1"));
    assert_eq!(d.corp_num.as_deref(), Some("9999999999"));
    assert_eq!(d.event_type.as_deref(), Some("NTS"));
    assert_eq!(d.item_key.as_deref(), Some("025111409301000001"));
    assert_eq!(d.key().as_deref(), Some("9999999999:025111409301000001"));
}

#[test]
fn body_event_type_is_used_when_the_header_is_absent() {
    let h = headers(&[
        ("Pb-Webhook-Type", "HT.CASHBILL"),
        ("Pb-Webhook-MID", "m-2"),
    ]);
    let body =
        r#"{"tradeType":"승인거래","eventType":"HTCashbill","nested":{"a":[1,2,{"b":null}]}}"#;
    let d = Delivery::parse(&h, body.as_bytes()).expect("valid");
    assert_eq!(d.event_type.as_deref(), Some("HTCashbill"));
    assert_eq!(d.corp_num, None);
    assert_eq!(d.key().as_deref(), Some("m-2"), "falls back to the MID");
}

#[test]
fn odd_field_types_are_tolerated() {
    let h = headers(&[("Pb-Webhook-Type", "X"), ("Pb-Webhook-MID", "m")]);
    let body = r#"{"corpNum":1234567890,"itemKey":null,"eventType":["x"],"eventDT":1.5,"e\u0076entType2":1}"#;
    let d = Delivery::parse(&h, body.as_bytes()).expect("valid");
    assert_eq!(d.corp_num.as_deref(), Some("1234567890"));
    assert_eq!(d.item_key, None);
    assert_eq!(d.event_type, None);
    assert_eq!(d.event_dt, None);
}

#[test]
fn numbers_beyond_f64_are_valid_json_and_forwarded() {
    // Found by the fuzzer: RFC 8259 sets no range on numbers, so the
    // bridge forwards them rather than refusing a valid body.
    let h = headers(&[("Pb-Webhook-Type", "X")]);
    let body = br#"{"amount":3e888,"eventType":"Issue"}"#;
    let d = Delivery::parse(&h, body).expect("valid JSON");
    assert_eq!(d.event_type.as_deref(), Some("Issue"));
}

#[test]
fn escaped_strings_are_decoded() {
    let h = headers(&[("Pb-Webhook-Type", "X")]);
    let d = Delivery::parse(&h, br#"{"eventType":"Is\u0073ue"}"#).expect("valid");
    assert_eq!(d.event_type.as_deref(), Some("Issue"));
}

#[test]
fn bad_bodies_are_named() {
    let h = headers(&[("Pb-Webhook-Type", "X")]);
    let deep = "[".repeat(100_000);
    type Check = fn(&BridgeError) -> bool;
    let cases: Vec<(&[u8], Check)> = vec![
        (b"", |e| matches!(e, BridgeError::EmptyBody)),
        (b"  \n", |e| matches!(e, BridgeError::EmptyBody)),
        (b"corpNum=1&eventType=Issue", |e| {
            matches!(e, BridgeError::NotJson(_))
        }),
        (br#"{"corpNum":"12"#, |e| {
            matches!(e, BridgeError::NotJson(_))
        }),
        (b"[1,2,3]", |e| matches!(e, BridgeError::NotObject)),
        (b"\"Issue\"", |e| matches!(e, BridgeError::NotObject)),
        (b"\xff\xfe{\"eventType\":\"Issue\"}", |e| {
            matches!(e, BridgeError::NotUtf8)
        }),
        (b"{} {}", |e| matches!(e, BridgeError::NotJson(_))),
        (deep.as_bytes(), |e| matches!(e, BridgeError::TooDeep)),
    ];
    for (body, check) in cases {
        let err = Delivery::parse(&h, body).expect_err("must be rejected");
        assert!(
            check(&err),
            "{:?} gave {err:?}",
            String::from_utf8_lossy(body)
        );
    }
    let n = MAX_DEPTH;
    let at_limit = format!("{{\"a\":{}{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
    Delivery::parse(&h, at_limit.as_bytes()).expect("depth at the limit is fine");
    let over = format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
    let err = Delivery::parse(&h, over.as_bytes()).expect_err("too deep");
    assert!(matches!(err, BridgeError::TooDeep), "{err:?}");
    let in_string = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(1000), "{".repeat(1000));
    Delivery::parse(&h, in_string.as_bytes()).expect("brackets inside strings do not count");
}

/// Bodies near the usual one: flat objects of the fields the bridge
/// reads and others, with strings (escapes and control characters
/// too), numbers of every form, literals, nested values, odd spacing,
/// and sometimes a byte cut out or put in.
fn bodyish() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let key = prop_oneof![
        Just("eventType".to_string()),
        Just("corpNum".to_string()),
        Just("itemKey".to_string()),
        Just("eventDT".to_string()),
        Just("stateCode".to_string()),
        Just("stateDT".to_string()),
        Just("e\\u0076entType".to_string()),
        "[a-zA-Z]{0,8}",
    ];
    let value = prop_oneof![
        4 => "[ -~]{0,12}".prop_map(|s| serde_json::to_string(&s).expect("string")),
        2 => "\\PC{0,6}".prop_map(|s| format!("\"{s}\"")),
        1 => "[ \\t]{0,3}".prop_map(|s| format!("\"{s}\"")),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        2 => "-?[0-9]{1,22}",
        1 => "-?[0-9]{1,3}(\\.[0-9]{0,3})?([eE][+-]?[0-9]{0,3})?",
        1 => Just("true".to_string()),
        1 => Just("false".to_string()),
        1 => Just("null".to_string()),
        1 => Just("nul".to_string()),
        1 => Just("{}".to_string()),
        1 => Just("[1,{\"a\":2}]".to_string()),
        1 => Just("\"a\\\"b\"".to_string()),
        1 => Just("\"tab\there\"".to_string()),
    ];
    let ws = || prop_oneof![6 => "[ \\t\\r\\n]{0,2}", 1 => "[ \\t\\r\\n\\x0b]{0,2}"];
    let member = (ws(), key, ws(), ws(), value, ws())
        .prop_map(|(a, k, b, c, v, d)| format!("{a}\"{k}\"{b}:{c}{v}{d}"));
    (
        ws(),
        proptest::collection::vec(member, 0..8),
        ws(),
        proptest::option::weighted(0.3, (any::<prop::sample::Index>(), "[ -~]?")),
    )
        .prop_map(|(lead, members, trail, cut)| {
            let mut s = format!("{lead}{{{}}}{trail}", members.join(","));
            if let Some((at, put)) = cut {
                let at = at.index(s.len() + 1);
                if s.is_char_boundary(at) {
                    let rest = s.split_off(at);
                    let rest = rest
                        .chars()
                        .skip(usize::from(put.is_empty()))
                        .collect::<String>();
                    s.push_str(&put);
                    s.push_str(&rest);
                }
            }
            s
        })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
    #[test]
    fn the_flat_reading_is_serde_jsons_whenever_it_reads(body in bodyish()) {
        if let Some(fast) = flat_fields(&body) {
            let slow = json_fields(&body);
            proptest::prop_assert!(
                matches!(&slow, Ok(s) if *s == fast),
                "{body:?}: flat {fast:?}, serde_json {slow:?}"
            );
        }
    }
}

#[test]
fn the_usual_bodies_take_the_flat_reading() {
    for body in [
        ISSUE,
        r#"{}"#,
        r#" { "corpNum" : "1" , "stateCode" : -12 , "x" : null, "y": true, "z": false } "#,
        r#"{"corpNum":"1234567890","itemKey":"025111409301000001","ntsConfirmNum":"202511144100001234567890","ntssendDT":"","ntsresultDT":"","ntssendErrCode":"","stateCode":300,"stateDT":"20251114093010","eventDT":"20251114093011","eventType":"Issue"}"#,
    ] {
        let fast = flat_fields(body).expect(body);
        assert_eq!(
            Ok(fast),
            json_fields(body).map_err(|e| e.to_string()).map_err(|_| ()),
            "{body}"
        );
    }
    for other in [
        r#"{"a":1.5}"#,
        r#"{"a":"\n"}"#,
        r#"{"a":{}}"#,
        r#"{"a":01}"#,
        r#"{"a":-0}"#,
        r#"{"a":1,}"#,
        r#"{"a":1} x"#,
        "{\"a\":\"\u{1}\"}",
    ] {
        assert!(flat_fields(other).is_none(), "{other}");
    }
}

#[test]
fn a_repeated_header_counts_with_its_first_value() {
    let mut h = headers(&[("Pb-Webhook-Type", "X"), ("Pb-Webhook-MID", "first")]);
    h.append(PB_WEBHOOK_MID.clone(), HeaderValue::from_static("second"));
    h.append(
        HeaderName::from_static("pb-webhook-type"),
        HeaderValue::from_static("Y"),
    );
    let d = Delivery::parse(&h, ISSUE.as_bytes()).expect("valid");
    assert_eq!((d.webhook_type, d.mid), ("X", Some("first")));
    assert_eq!(d.mid, h.get(&PB_WEBHOOK_MID).and_then(|v| v.to_str().ok()));
}

#[test]
fn trim_is_str_trim() {
    for s in [
        "",
        " ",
        "a",
        " a",
        "a ",
        "\u{b}a\u{b}",
        "\u{a0}a",
        "a\u{3000}",
        "ab",
        "a b",
        "\t\r\n",
    ] {
        assert_eq!(trim(s), s.trim(), "{s:?}");
    }
}

#[test]
fn escaped_keys_are_fields_too() {
    let h = headers(&[("Pb-Webhook-Type", "X")]);
    let d = Delivery::parse(&h, br#"{"\u0063orpNum":"1","corpNum2":"2"}"#).expect("valid");
    assert_eq!(d.corp_num.as_deref(), Some("1"));
}

#[test]
fn missing_type_is_rejected() {
    let err = Delivery::parse(&headers(&[]), ISSUE.as_bytes()).expect_err("no type");
    assert!(matches!(err, BridgeError::MissingHeader("Pb-Webhook-Type")));
}

#[test]
fn state_code_is_read_as_string_or_number() {
    let h = headers(&[("Pb-Webhook-Type", "X")]);
    let d =
        Delivery::parse(&h, br#"{"stateCode":"300","stateDT":"20251114110001"}"#).expect("valid");
    assert_eq!(d.state_code.as_deref(), Some("300"));
    let d = Delivery::parse(&h, br#"{"stateCode":304}"#).expect("valid");
    assert_eq!(d.state_code.as_deref(), Some("304"));
    assert_eq!(d.state_dt, None);
}

#[test]
fn non_utf8_header_is_a_bad_header() {
    let mut h = headers(&[("Pb-Webhook-Type", "X")]);
    h.insert(
        PB_WEBHOOK_MID.clone(),
        HeaderValue::from_bytes(b"\xff\xfe").expect("opaque bytes are allowed"),
    );
    let err = Delivery::parse(&h, ISSUE.as_bytes()).expect_err("bad header");
    assert!(matches!(err, BridgeError::BadHeader("Pb-Webhook-MID")));
}
