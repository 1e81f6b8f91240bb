//! Route: which topic a delivery goes to.
//!
//! Every topic name is decided at start-up from the configuration: the
//! template applied to the configured event types, the explicit overrides,
//! and one fallback. A delivery only *selects* one of those routes by its
//! (webhook type, event type) pair; nothing it sends ever becomes part of a
//! topic name. That is what keeps a hostile `eventType` such as
//! `../../__consumer_offsets` away from internal topics and stops a sender
//! from creating topics without bound.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutesConfig {
    /// Topic name template for known event types; `{type}` is the webhook
    /// type and `{event}` the event type, both normalised.
    pub template: String,
    /// Topic for every event type not listed in `known`.
    pub fallback: String,
    /// The event types that get a topic of their own, as
    /// `"WEBHOOK.TYPE:EventType"`.
    pub known: Vec<String>,
    /// Explicit topics for some event types, replacing the template.
    pub overrides: BTreeMap<String, String>,
}

impl Default for RoutesConfig {
    fn default() -> Self {
        Self {
            template: "popbill.{type}.{event}".into(),
            fallback: "popbill.unrouted".into(),
            known: DEFAULT_KNOWN.iter().map(|s| s.to_string()).collect(),
            overrides: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterConfig {
    /// Malformed deliveries (not JSON, not an object, not UTF-8, too deep,
    /// no `Pb-Webhook-Type`) from a verified sender (valid credentials or
    /// an allowed source) are written as they are to `topic`, with the
    /// reason in a header, and answered `OK`, so a permanently broken body
    /// does not loop through POPBiLL's retries. When false, or from an
    /// unverified sender, they get 400.
    pub enabled: bool,
    pub topic: String,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            topic: "popbill.deadletter".into(),
        }
    }
}

/// The event types POPBiLL documents, each with a topic of its own by
/// default. `MANUAL` is a delivery re-run by hand from the POPBiLL site.
const DEFAULT_KNOWN: &[&str] = &[
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
pub(crate) const OTHER_LABEL: &str = "other";

/// The metric label of deliveries written to the dead-letter topic: their
/// own series, not `other` (an event type no route knows).
pub(crate) const DEAD_LETTER_LABEL: &str = "dead_letter";

/// Kafka's own limit on topic-name length.
const MAX_TOPIC_LEN: usize = 249;

/// A configured `WEBHOOK.TYPE:EventType` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteKey {
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
pub(crate) fn normalise(part: &str) -> String {
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

pub(crate) fn render_template(template: &str, key: &RouteKey) -> String {
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

/// FNV-1a over the names of the routing table. The table is built from the
/// configuration only and never grows from requests, so the flooding that
/// SipHash's keys defend against cannot happen; looking a delivery up
/// costs a third of SipHash's instructions.
#[derive(Default)]
struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type NameHash = std::hash::BuildHasherDefault<NameHasher>;

/// One destination. Routes are numbered so other modules can keep per-route
/// state (counters, topic readiness) in plain vectors, with no lookups on
/// the hot path.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: usize,
    /// Bounded metric label: the configured key, or `other`.
    pub label: Arc<str>,
    pub topic: Arc<str>,
    /// Which of the three kinds of route this is.
    pub kind: RouteKind,
}

/// What a route is for: a configured `routes.known` pair, the fallback for
/// every other event type, or the dead-letter topic for malformed bodies.
/// Every route's topic is created at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Known,
    Fallback,
    DeadLetter,
}

/// One route per topic, numbered as the router numbers them: the unit
/// tests' routing.
#[cfg(test)]
pub(crate) fn numbered(topics: &[&str]) -> Vec<Route> {
    topics
        .iter()
        .enumerate()
        .map(|(id, t)| Route {
            id,
            label: format!("R:{id}").into(),
            topic: (*t).into(),
            kind: RouteKind::Known,
        })
        .collect()
}

#[derive(Debug)]
pub struct Router {
    /// webhook type → event type → route id. Two levels so a lookup borrows
    /// the request's strings instead of building a key.
    table: HashMap<String, HashMap<String, usize, NameHash>, NameHash>,
    routes: Vec<Route>,
    fallback: usize,
    dead_letter: Option<usize>,
}

impl Router {
    /// Builds the table from `routes` (and, when enabled, the dead-letter
    /// topic), checking every name on the way. Returns every problem at
    /// once, each saying what to change.
    pub fn new(
        routes: &RoutesConfig,
        dead_letter: &DeadLetterConfig,
    ) -> Result<Router, Vec<String>> {
        let cfg = routes;
        let mut errs = Vec::new();
        if !cfg.template.contains("{event}") {
            errs.push(format!(
                "routes.template {:?} must contain {{event}}, or every event type shares one topic \
                 (set routes.fallback for that instead)",
                cfg.template
            ));
        }
        let mut table: HashMap<String, HashMap<String, usize, NameHash>, NameHash> =
            HashMap::default();
        let mut list = Vec::new();
        let keys = cfg
            .known
            .iter()
            .chain(cfg.overrides.keys().filter(|k| !cfg.known.contains(k)));
        for raw in keys {
            let key = match RouteKey::parse(raw) {
                Ok(k) => k,
                Err(e) => {
                    errs.push(format!("routes entry {raw:?}: {e}"));
                    continue;
                }
            };
            let (topic, what) = match cfg.overrides.get(raw) {
                Some(t) => (t.clone(), "routes.overrides"),
                None => (render_template(&cfg.template, &key), "routes.template"),
            };
            if let Err(e) = check_topic_name(&topic) {
                errs.push(format!("{what} gives topic {topic:?} for {raw:?}: {e}"));
                continue;
            }
            let by_event = table.entry(key.webhook_type.clone()).or_default();
            if by_event.contains_key(&key.event_type) {
                continue;
            }
            let id = list.len();
            by_event.insert(key.event_type.clone(), id);
            list.push(Route {
                id,
                label: key.to_string().into(),
                topic: topic.into(),
                kind: RouteKind::Known,
            });
        }
        if let Err(e) = check_topic_name(&cfg.fallback) {
            errs.push(format!("routes.fallback topic {:?}: {e}", cfg.fallback));
        }
        let fallback = list.len();
        list.push(Route {
            id: fallback,
            label: OTHER_LABEL.into(),
            topic: cfg.fallback.as_str().into(),
            kind: RouteKind::Fallback,
        });
        let dead_letter = if dead_letter.enabled {
            let dl = dead_letter.topic.as_str();
            if let Err(e) = check_topic_name(dl) {
                errs.push(format!("dead_letter.topic {dl:?}: {e}"));
            }
            // Malformed bodies mixed into a delivery topic would reach
            // consumers that expect well-formed events.
            if let Some(clash) = list.iter().find(|r| &*r.topic == dl) {
                let what = if clash.kind == RouteKind::Fallback {
                    "routes.fallback".to_string()
                } else {
                    format!("the topic of route {}", clash.label)
                };
                errs.push(format!(
                    "dead_letter.topic {dl:?} is also {what}: give dead letters a topic of their own"
                ));
            }
            list.push(Route {
                id: list.len(),
                label: DEAD_LETTER_LABEL.into(),
                topic: dl.into(),
                kind: RouteKind::DeadLetter,
            });
            Some(list.len() - 1)
        } else {
            None
        };
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Router {
            table,
            routes: list,
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
mod tests;
