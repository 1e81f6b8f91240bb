use super::*;
use crate::error::BridgeError;

#[test]
fn dead_letter_reasons_are_those_of_the_bridge() {
    let not_json = serde_json::from_str::<Value>("{").expect_err("not JSON");
    let dead: Vec<&str> = [
        BridgeError::MissingHeader("Pb-Webhook-Type"),
        BridgeError::BadHeader("Pb-Webhook-Type"),
        BridgeError::NotUtf8,
        BridgeError::NotJson(not_json),
        BridgeError::NotObject,
    ]
    .iter()
    .filter(|e| e.dead_letters())
    .filter_map(|e| e.reject_reason())
    .map(|r| r.as_str())
    .collect();
    assert_eq!(dead, dead_letter_reasons());
}

#[test]
fn patterns_escape_only_syntax_characters() {
    assert_eq!(regex_escape("com.acme-corp/x"), "com\\.acme-corp\\/x");
}

#[test]
fn ce_type_matches_the_bridges() {
    assert_eq!(
        record::ce_type_of(&CloudEventsConfig::default(), "TAXINVOICE.STATE", "Issue"),
        "com.popbill.webhook.TAXINVOICE.STATE.Issue"
    );
}

#[test]
fn yaml_is_block_style_with_json_scalars() {
    let v = json!({"a": {"b": [1, "x: y", {"c": null}], "on": true, "e": {}}, "$ref": "#/x"});
    let y = to_yaml(&v);
    assert!(
        y.contains("a:\n  b:\n    - 1\n    - \"x: y\"\n    -\n      c: null\n"),
        "{y}"
    );
    assert!(y.contains("  \"on\": true\n"), "{y}");
    assert!(y.contains("  e: {}\n"), "{y}");
    assert!(y.contains("$ref: \"#/x\"\n"), "{y}");
}

#[test]
fn consumers_are_told_to_read_committed_when_transactions_are_on() {
    let mut cfg = Config::default();
    let on = document(&cfg).expect("document");
    let text = on["info"]["description"].as_str().expect("description");
    assert!(text.contains("`isolation.level=read_committed`"), "{text}");
    assert!(text.contains("`read_uncommitted`"), "{text}");
    let ops = on["operations"].as_object().expect("operations");
    assert!(ops.values().all(|o| {
        o["summary"]
            .as_str()
            .is_some_and(|s| s.contains("isolation.level=read_committed"))
    }));
    cfg.kafka.transactions.enabled = false;
    let off = document(&cfg).expect("document");
    let text = off["info"]["description"].as_str().expect("description");
    assert!(text.contains("At least once"), "{text}");
    assert!(!text.contains("read_committed"), "{text}");
}

#[test]
fn camel_case_names() {
    assert_eq!(
        camel("TAXINVOICE.STATE:CLOSEDOWN"),
        "TaxinvoiceStateClosedown"
    );
    assert_eq!(camel("HT.CASHBILL:HTCashbill"), "HtCashbillHtcashbill");
}
