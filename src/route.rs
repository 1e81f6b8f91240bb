//! Route: which topic a delivery goes to.
//!
//! Every topic name is decided at start-up from the configuration: the
//! template applied to the configured event types, the explicit overrides,
//! and one fallback. A delivery only *selects* one of those routes by its
//! (webhook type, event type) pair; nothing it sends ever becomes part of a
//! topic name. That is what keeps a hostile `eventType` such as
//! `../../__consumer_offsets` away from internal topics and stops a sender
//! from creating topics without bound.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::config::RoutesConfig;

/// The event types POPBiLL documents, each with a topic of its own by
/// default. `MANUAL` is a delivery re-run by hand from the POPBiLL site.
pub const DEFAULT_KNOWN: &[&str] = &[
    "TAXINVOICE.STATE:Issue",
    "TAXINVOICE.STATE:CancelIssue",
    "TAXINVOICE.STATE:CLOSEDOWN",
    "TAXINVOICE.STATE:NTS",
    "TAXINVOICE.STATE:OPEN",
    "TAXINVOICE.STATE:MANUAL",
    "STATEMENT.STATE:Issue",
    "STATEMENT.STATE:Cancel",
    "STATEMENT.STATE:OPEN",
    "STATEMENT.STATE:MANUAL",
    "CASHBILL.STATE:Issue",
    "CASHBILL.STATE:NTS",
    "CASHBILL.STATE:MANUAL",
    "HT.TAXINVOICEXML:HTTaxinvoice",
    "HT.CASHBILL:HTCashbill",
    "KAKAO.STATE:RESULT",
    "KAKAO.STATE:MANUAL",
];

/// Metric label of deliveries that match no configured event type.
pub const OTHER_LABEL: &str = "other";

/// Kafka's own limit on topic-name length.
const MAX_TOPIC_LEN: usize = 249;

/// A configured `WEBHOOK.TYPE:EventType` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    pub webhook_type: String,
    pub event_type: String,
}

impl RouteKey {
    pub fn parse(s: &str) -> Result<RouteKey, String> {
        let (t, e) = s.split_once(':').ok_or_else(|| {
            "expected \"WEBHOOK.TYPE:EventType\", e.g. \"TAXINVOICE.STATE:Issue\"".to_string()
        })?;
        let (t, e) = (t.trim(), e.trim());
        if t.is_empty() || e.is_empty() {
            return Err("webhook type and event type must both be non-empty".into());
        }
        Ok(RouteKey {
            webhook_type: t.to_string(),
            event_type: e.to_string(),
        })
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.webhook_type, self.event_type)
    }
}

/// Lower case, and every character outside `[a-z0-9._-]` becomes `-`.
/// Only ever applied to configured names, never to request input.
pub fn normalise(part: &str) -> String {
    part.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub fn render_template(template: &str, key: &RouteKey) -> String {
    template
        .replace("{type}", &normalise(&key.webhook_type))
        .replace("{event}", &normalise(&key.event_type))
}

/// Kafka's rules for a topic name, plus ours: no internal (`__`) topics.
pub fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(format!("topic name longer than {MAX_TOPIC_LEN} characters"));
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be \".\" or \"..\"".into());
    }
    if name.starts_with("__") {
        return Err("names starting with \"__\" are Kafka's internal topics".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "character {c:?} is not allowed (only [a-zA-Z0-9._-])"
        ));
    }
    Ok(())
}

/// One destination. Routes are numbered so other modules can keep per-route
/// state (counters, topic readiness) in plain vectors, with no lookups on
/// the hot path.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: usize,
    /// Bounded metric label: the configured key, or `other`.
    pub label: Arc<str>,
    pub topic: Arc<str>,
    /// The fallback and dead-letter topics are created on first use rather
    /// than at start-up.
    pub is_fallback: bool,
}

#[derive(Debug)]
pub struct Router {
    /// webhook type → event type → route id. Two levels so a lookup borrows
    /// the request's strings instead of building a key.
    table: HashMap<String, HashMap<String, usize>>,
    routes: Vec<Route>,
    fallback: usize,
    dead_letter: Option<usize>,
}

impl Router {
    /// Builds the table. Config validation has already checked every name;
    /// errors here repeat those checks so the router can never hold a bad
    /// topic even if called without validation.
    pub fn from_config(cfg: &RoutesConfig) -> Result<Router, String> {
        Self::with_dead_letter(cfg, None)
    }

    /// Also routes malformed deliveries to `dead_letter`, when set.
    pub fn with_dead_letter(
        cfg: &RoutesConfig,
        dead_letter: Option<&str>,
    ) -> Result<Router, String> {
        let mut table: HashMap<String, HashMap<String, usize>> = HashMap::new();
        let mut routes = Vec::new();
        let keys = cfg
            .known
            .iter()
            .chain(cfg.overrides.keys().filter(|k| !cfg.known.contains(k)));
        for raw in keys {
            let key = RouteKey::parse(raw).map_err(|e| format!("route {raw:?}: {e}"))?;
            let topic = match cfg.overrides.get(raw) {
                Some(t) => t.clone(),
                None => render_template(&cfg.template, &key),
            };
            check_topic_name(&topic).map_err(|e| format!("route {raw:?} topic {topic:?}: {e}"))?;
            let by_event = table.entry(key.webhook_type.clone()).or_default();
            if by_event.contains_key(&key.event_type) {
                continue;
            }
            let id = routes.len();
            by_event.insert(key.event_type.clone(), id);
            routes.push(Route {
                id,
                label: key.to_string().into(),
                topic: topic.into(),
                is_fallback: false,
            });
        }
        check_topic_name(&cfg.fallback).map_err(|e| format!("fallback topic: {e}"))?;
        let fallback = routes.len();
        routes.push(Route {
            id: fallback,
            label: OTHER_LABEL.into(),
            topic: cfg.fallback.as_str().into(),
            is_fallback: true,
        });
        let dead_letter = match dead_letter {
            Some(t) => {
                check_topic_name(t).map_err(|e| format!("dead-letter topic: {e}"))?;
                routes.push(Route {
                    id: routes.len(),
                    label: OTHER_LABEL.into(),
                    topic: t.into(),
                    is_fallback: true,
                });
                Some(routes.len() - 1)
            }
            None => None,
        };
        Ok(Router {
            table,
            routes,
            fallback,
            dead_letter,
        })
    }

    pub fn route(&self, webhook_type: &str, event_type: Option<&str>) -> &Route {
        let id = event_type
            .and_then(|e| self.table.get(webhook_type)?.get(e))
            .copied()
            .unwrap_or(self.fallback);
        &self.routes[id]
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn fallback(&self) -> &Route {
        &self.routes[self.fallback]
    }

    /// Where malformed deliveries from verified senders go, if anywhere.
    pub fn dead_letter(&self) -> Option<&Route> {
        self.dead_letter.map(|i| &self.routes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::from_config(&RoutesConfig::default()).expect("default routes are valid")
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
            assert!(route.is_fallback, "{t} {e:?}");
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
        let r = Router::from_config(&cfg).expect("valid");
        assert_eq!(
            &*r.route("TAXINVOICE.STATE", Some("Issue")).topic,
            "invoices.issued"
        );
        assert_eq!(&*r.route("FAX.STATE", Some("RESULT")).topic, "fax.results");
        assert!(!r.route("FAX.STATE", Some("RESULT")).is_fallback);
    }

    #[test]
    fn the_number_of_topics_is_fixed_by_configuration() {
        let r = router();
        assert_eq!(r.routes().len(), DEFAULT_KNOWN.len() + 1);
        for i in 0..1000 {
            let e = format!("Event{i}");
            assert!(r.route("TAXINVOICE.STATE", Some(&e)).is_fallback);
        }
    }

    #[test]
    fn normalise_keeps_only_safe_characters() {
        assert_eq!(normalise("TAXINVOICE.STATE"), "taxinvoice.state");
        assert_eq!(normalise("../../__x y/Z"), "..-..-__x-y-z");
        assert_eq!(normalise("승인"), "--");
        for s in ["a/b", "A B", "x\u{0}y", "é"] {
            assert!(normalise(s).chars().all(|c| c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '.' | '_' | '-')));
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
}
