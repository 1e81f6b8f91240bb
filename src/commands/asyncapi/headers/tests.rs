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
