//! What the bridge knows of one topic: present (every partition serving),
//! missing, not serving yet, or not known; and why, when Kafka said.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize};

use tracing::warn;

use crate::telemetry::logging::LastSaid;

pub(super) const UNKNOWN: u8 = 0;
/// Listed, and every partition's leader answered (see [`serving`]).
pub(super) const PRESENT: u8 = 1;
pub(super) const MISSING: u8 = 2;
/// Listed, but a partition (a new one, or one added since) has not yet
/// answered on its leader: nothing is written to it yet.
pub(super) const NOT_SERVING: u8 = 3;

pub(super) struct TopicState {
    pub(super) name: Arc<str>,
    pub(super) state: AtomicU8,
    /// Why Kafka refused to create it, naming the setting that fixes it;
    /// cleared once it exists.
    pub(super) cannot_create: LastSaid,
    /// "missing and topics.create is false" was logged (once, not every
    /// readiness round).
    pub(super) said_missing: AtomicBool,
    /// Partitions seen answering on their leaders; the topic is present
    /// once this reaches the partitions the last metadata listed.
    pub(super) serving: AtomicUsize,
    /// Why a listed topic does not serve yet (the partition and Kafka's
    /// answer); cleared once it does.
    pub(super) not_serving: LastSaid,
}

impl TopicState {
    pub(super) fn cause(&self) -> Option<String> {
        self.cannot_create.get()
    }

    /// Records why the topic does not serve yet (or that it does now),
    /// logging only changes.
    pub(super) fn set_not_serving(&self, cause: Option<String>) {
        if let Some(c) = self.not_serving.update(cause) {
            warn!(topic = %self.name, cause = %c, "topic exists but a partition's leader does not answer yet: nothing is written to it until it does; deliveries routed to it get 503");
        }
    }

    /// Records why creation failed (or that it no longer does), logging
    /// only changes: the readiness loop retries every few seconds.
    pub(super) fn set_cause(&self, cause: Option<String>) {
        if let Some(c) = self.cannot_create.update(cause) {
            warn!(topic = %self.name, cause = %c, "topic does not exist and Kafka refused to create it: deliveries routed to it get 503 and readiness fails until it exists");
        }
    }
}
