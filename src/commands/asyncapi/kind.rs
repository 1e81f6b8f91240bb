//! What a message is about (a route's webhook and event type, the
//! fallback or the dead letters), and the id and summary that follow from
//! it.

use super::products::product;

/// What a message is about.
pub(super) enum Kind<'a> {
    Routed {
        webhook_type: &'a str,
        event_type: &'a str,
    },
    Fallback,
    DeadLetter,
}

impl Kind<'_> {
    pub(super) fn message_id(&self) -> String {
        match self {
            Kind::Routed {
                webhook_type,
                event_type,
            } => format!("{webhook_type}.{event_type}")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
            Kind::Fallback => "Unrouted".into(),
            Kind::DeadLetter => "DeadLetter".into(),
        }
    }

    pub(super) fn summary(&self) -> String {
        match self {
            Kind::Routed {
                webhook_type,
                event_type,
            } => {
                let what = product(webhook_type)
                    .and_then(|p| p.events.iter().find(|(e, _)| e == event_type))
                    .map(|(_, d)| *d)
                    .unwrap_or("a configured route");
                format!("`{webhook_type}` `{event_type}`: {what}.")
            }
            Kind::Fallback => "Deliveries that match no route.".into(),
            Kind::DeadLetter => "Malformed deliveries.".into(),
        }
    }
}
