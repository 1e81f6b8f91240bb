use super::*;

fn router() -> Router {
    Router::new(
        &RoutesConfig::default(),
        &crate::route::DeadLetterConfig::default(),
    )
    .expect("default routes are valid")
}

#[test]
fn known_event_types_get_their_template_topic() {
    let r = router();
    let route = r.route("TAXINVOICE.STATE", Some("Issue"));
    assert_eq!(&*route.topic, "popbill.taxinvoice.state.issue");
    assert_eq!(&*route.label, "TAXINVOICE.STATE:Issue");
    assert_eq!(
        &*r.route("HT.TAXINVOICEXML", Some("HTTaxinvoice")).topic,
        "popbill.ht.taxinvoicexml.httaxinvoice"
    );
    assert_eq!(
        &*r.route("STATEMENT.STATE", Some("Issue")).topic,
        "popbill.statement.state.issue"
    );
}

#[test]
fn unknown_hostile_or_missing_event_types_go_to_the_fallback() {
    let r = router();
    for (t, e) in [
        ("TAXINVOICE.STATE", Some("../../__consumer_offsets")),
        ("TAXINVOICE.STATE", Some("issue")),
        ("SMS.STATE", Some("RESULT")),
        ("TAXINVOICE.STATE", None),
        ("", Some("Issue")),
    ] {
        let route = r.route(t, e);
        assert!(route.kind != RouteKind::Known, "{t} {e:?}");
        assert_eq!(&*route.topic, "popbill.unrouted");
        assert_eq!(&*route.label, OTHER_LABEL);
    }
}

#[test]
fn overrides_replace_the_template_and_add_routes() {
    let mut cfg = RoutesConfig::default();
    cfg.overrides
        .insert("TAXINVOICE.STATE:Issue".into(), "invoices.issued".into());
    cfg.overrides
        .insert("FAX.STATE:RESULT".into(), "fax.results".into());
    let r = Router::new(&cfg, &DeadLetterConfig::default()).expect("valid");
    assert_eq!(
        &*r.route("TAXINVOICE.STATE", Some("Issue")).topic,
        "invoices.issued"
    );
    assert_eq!(&*r.route("FAX.STATE", Some("RESULT")).topic, "fax.results");
    assert_eq!(r.route("FAX.STATE", Some("RESULT")).kind, RouteKind::Known);
}

#[test]
fn the_number_of_topics_is_fixed_by_configuration() {
    let r = router();
    // Every known pair, the fallback and the dead-letter topic.
    assert_eq!(r.routes().len(), DEFAULT_KNOWN.len() + 2);
    for i in 0..1000 {
        let e = format!("Event{i}");
        assert_eq!(
            r.route("TAXINVOICE.STATE", Some(&e)).kind,
            RouteKind::Fallback
        );
    }
}

#[test]
fn normalise_keeps_only_safe_characters() {
    assert_eq!(normalise("TAXINVOICE.STATE"), "taxinvoice.state");
    assert_eq!(normalise("../../__x y/Z"), "..-..-__x-y-z");
    assert_eq!(normalise("승인"), "--");
    for s in ["a/b", "A B", "x\u{0}y", "é"] {
        assert!(
            normalise(s).chars().all(|c| c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '.' | '_' | '-'))
        );
    }
}

#[test]
fn topic_names_are_checked() {
    assert!(check_topic_name("popbill.unrouted").is_ok());
    assert!(check_topic_name("__consumer_offsets").is_err());
    assert!(check_topic_name("..").is_err());
    assert!(check_topic_name("").is_err());
    assert!(check_topic_name("a/b").is_err());
    assert!(check_topic_name(&"a".repeat(250)).is_err());
    assert!(check_topic_name(&"a".repeat(249)).is_ok());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn normalised_names_only_hold_safe_characters(s in "\\PC{0,80}") {
            let n = normalise(&s);
            prop_assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')));
            prop_assert_eq!(n.chars().count(), s.chars().count());
            prop_assert_eq!(normalise(&n), n.clone(), "idempotent");
        }

        #[test]
        fn any_event_type_routes_to_a_configured_topic(t in "\\PC{0,40}", e in proptest::option::of("\\PC{0,40}")) {
            let r = router();
            let route = r.route(&t, e.as_deref());
            prop_assert!(r.routes().iter().any(|x| x.topic == route.topic));
            prop_assert!(check_topic_name(&route.topic).is_ok());
            prop_assert!(!route.topic.starts_with("__"));
        }

        #[test]
        fn check_topic_name_agrees_with_kafkas_rules(s in "[a-zA-Z0-9._\\-/ ]{0,260}") {
            let legal = !s.is_empty()
                && s.len() <= 249
                && s != "." && s != ".."
                && !s.starts_with("__")
                && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            prop_assert_eq!(check_topic_name(&s).is_ok(), legal);
        }
    }
}

#[test]
fn route_keys_parse() {
    assert_eq!(
        RouteKey::parse("KAKAO.STATE:RESULT")
            .expect("ok")
            .event_type,
        "RESULT"
    );
    assert!(RouteKey::parse("KAKAO.STATE").is_err());
    assert!(RouteKey::parse(":RESULT").is_err());
}
