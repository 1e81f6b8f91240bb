//! Liveness and readiness.
//!
//! Liveness (`/healthz`) only says the process answers: it never depends on
//! Kafka, so a Kafka outage does not make Kubernetes restart every replica.
//! Readiness (`/readyz`) says a delivery sent now would be published: Kafka
//! answered its last metadata request, every routed topic exists, the
//! duplicates ledger has been read up to its end, and the bridge is not
//! shutting down. A background task keeps it current and
//! creates missing topics as it goes.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::ledger::LedgerState;
use crate::metrics::Metrics;
use crate::topics::Topics;

#[derive(Default)]
pub struct Health {
    kafka_up: AtomicBool,
    shutting_down: AtomicBool,
    /// The topics readiness waits for, as of the last round.
    missing: Mutex<Vec<Arc<str>>>,
    /// The duplicates ledger, when duplicate detection is on.
    ledger: Option<Arc<LedgerState>>,
}

impl Health {
    pub fn new(ledger: Option<Arc<LedgerState>>) -> Health {
        Health {
            ledger,
            ..Health::default()
        }
    }

    /// `Ok` when ready, else every reason it is not.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        if self.shutting_down.load(Ordering::Acquire) {
            reasons.push("shutting down".to_string());
        }
        if !self.kafka_up.load(Ordering::Acquire) {
            reasons.push("Kafka metadata not reachable".to_string());
        }
        if let Ok(missing) = self.missing.lock() {
            reasons.extend(missing.iter().map(|t| format!("topic {t} missing")));
        }
        if let Some(problem) = self.ledger.as_ref().and_then(|l| l.problem()) {
            reasons.push(problem);
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// One round: ask Kafka, create or report missing topics, update state.
    pub async fn check(&self, topics: &Topics, metrics: &Metrics) {
        let up = topics.refresh().await;
        let was_up = self.kafka_up.swap(up, Ordering::AcqRel);
        metrics.kafka_up.set(i64::from(up));
        if up != was_up {
            if up {
                info!("Kafka is reachable");
            } else {
                warn!("Kafka is not reachable: readiness fails until it is");
            }
        }
        let missing = if up { topics.missing() } else { Vec::new() };
        metrics.topics_missing.set(missing.len() as i64);
        if let Ok(mut m) = self.missing.lock() {
            *m = missing;
        }
    }

    /// Runs `check` every `interval` until shutdown.
    pub async fn run(
        self: Arc<Self>,
        topics: Arc<Topics>,
        metrics: Arc<Metrics>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            self.check(&topics, &metrics).await;
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
