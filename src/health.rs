//! Liveness and readiness.
//!
//! Liveness (`/healthz`) only says the process answers: it never depends on
//! Kafka, so a Kafka outage does not make Kubernetes restart every replica.
//! Readiness (`/readyz`) says a delivery sent now would be published: Kafka
//! answered its last metadata request, every routed topic exists, the
//! duplicates ledger has been read up to its end, and the bridge is not
//! shutting down, and no Kafka client hit a fatal error (then it never
//! becomes ready again: the bridge exits to be restarted). A background task
//! keeps it current and creates missing topics as it goes.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::dedup::ledger::LedgerState;
use crate::kafka::certificate_check::CertificateCheck;
use crate::kafka::client::ClientEvents;
use crate::kafka::topics::{ConfigProblem, Topics};
use crate::kafka::transactions::GroupCommit;
use crate::signal::Signal;
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

/// At most this long for the bridge's own look at a broker certificate.
const CERTIFICATE_CHECK_WITHIN: Duration = Duration::from_secs(3);

pub(crate) struct Health {
    kafka_up: AtomicBool,
    /// A first round has run: its outcome was logged either way.
    checked: AtomicBool,
    shutting_down: AtomicBool,
    /// The topics readiness waits for, as of the last round, each with
    /// why it is missing when that is known.
    missing: Mutex<Vec<String>>,
    /// Topic settings that break a promise (record size, durability,
    /// ledger retention): blocking ones fail readiness, the others are
    /// listed as warnings.
    config_problems: Mutex<Vec<ConfigProblem>>,
    /// Topics a write was lately denied on (an ACL), as of the last round:
    /// warnings, since the other topics still take deliveries.
    write_denials: Mutex<Vec<String>>,
    /// The duplicates ledger, when duplicate detection is on.
    ledger: Option<Arc<LedgerState>>,
    /// The Kafka clients' shared events: a fatal error fails readiness for
    /// good; Kafka answering ends a bout of throttled librdkafka lines.
    events: Arc<ClientEvents>,
    /// The transactional writers, when `kafka.transactions` is on: not
    /// ready until one is initialised (an ACL refusal is named).
    transactions: Option<Arc<GroupCommit>>,
    /// With TLS to Kafka: the bridge's own look at a broker certificate
    /// librdkafka refused, and what it found.
    certificate_check: Option<CertificateCheck>,
    certificate_refused: Mutex<Option<String>>,
}

impl Health {
    pub fn new(ledger: Option<Arc<LedgerState>>, events: Arc<ClientEvents>) -> Health {
        Health {
            kafka_up: AtomicBool::new(false),
            checked: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            missing: Mutex::new(Vec::new()),
            config_problems: Mutex::new(Vec::new()),
            write_denials: Mutex::new(Vec::new()),
            ledger,
            events,
            transactions: None,
            certificate_check: None,
            certificate_refused: Mutex::new(None),
        }
    }

    /// Readiness also waits for a transactional writer.
    pub(crate) fn with_transactions(mut self, transactions: Option<Arc<GroupCommit>>) -> Health {
        self.transactions = transactions;
        self
    }

    /// With TLS to Kafka, a refused broker certificate is looked at (see
    /// `kafka::certificate_check`).
    pub(crate) fn with_certificate_check(mut self, check: Option<CertificateCheck>) -> Health {
        self.certificate_check = check;
        self
    }

    /// `Ok` when ready, else every reason it is not.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        if self.shutting_down.load(Ordering::Acquire) {
            reasons.push("shutting down".to_string());
        }
        if let Some(fatal) = self.events.fatal() {
            reasons.push(format!(
                "the Kafka producer hit a fatal error and can never write again ({fatal}); the bridge exits to be restarted"
            ));
        }
        if !self.kafka_up.load(Ordering::Acquire) {
            // The metadata error itself says only "transport failure";
            // a refused login or certificate is what the operator must fix.
            let certificate = self.certificate_refused.lock().ok().and_then(|c| c.clone());
            reasons.push(match (certificate, self.events.connection_refused()) {
                // librdkafka's own hint (ssl.ca.location) is often wrong:
                // what the bridge found comes first.
                (Some(found), Some(why)) => {
                    format!("Kafka metadata not reachable: {found} (librdkafka: {why})")
                }
                (_, Some(why)) => format!("Kafka metadata not reachable: librdkafka: {why}"),
                _ => "Kafka metadata not reachable".to_string(),
            });
        }
        if let Some(problem) = self.events.producer_id_problem() {
            reasons.push(problem);
        }
        if let Some(problem) = self.transactions.as_ref().and_then(|t| t.problem()) {
            reasons.push(problem);
        }
        if let Ok(missing) = self.missing.lock() {
            reasons.extend(missing.iter().cloned());
        }
        if let Ok(problems) = self.config_problems.lock() {
            reasons.extend(
                problems
                    .iter()
                    .filter(|p| p.blocking)
                    .map(|p| p.text.clone()),
            );
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

    /// What is wrong but does not stop deliveries now (a topic too small
    /// for the largest body, too few in-sync replicas, a ledger kept too
    /// short, a topic the authorizer denies writes on, a reader's group it
    /// refuses): `/readyz` lists them whether ready or not.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self
            .config_problems
            .lock()
            .map(|p| {
                p.iter()
                    .filter(|p| !p.blocking)
                    .map(|p| p.text.clone())
                    .collect()
            })
            .unwrap_or_default();
        if let Ok(denials) = self.write_denials.lock() {
            warnings.extend(denials.iter().cloned());
        }
        warnings.extend(self.events.refused_groups());
        warnings
    }

    pub(crate) fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// One round: ask Kafka, create or report missing topics, update state.
    pub async fn check(&self, topics: &Topics, metrics: &Metrics) {
        topics.check_fatal();
        let answer = topics.refresh().await;
        let up = answer.is_ok();
        let was_up = self.kafka_up.swap(up, Ordering::AcqRel);
        let first = !self.checked.swap(true, Ordering::AcqRel);
        // Kafka answering ends a bout of librdkafka trouble lines; what was
        // suppressed since the last summary is said here, once.
        let suppressed = if up {
            self.events.kafka_answered()
        } else {
            None
        };
        match answer {
            // Said on the change only: while Kafka is down this would
            // repeat every round.
            Err(e) if was_up || first => events::kafka_unreachable(metrics, &e),
            Err(_) => {}
            Ok(()) if !was_up => events::kafka_reachable(metrics, suppressed.unwrap_or(0)),
            Ok(()) => {
                if let Some(n) = suppressed {
                    events::kafka_trouble_over(n);
                }
            }
        }
        self.look_at_certificate(up).await;
        let mut missing = if up { topics.missing() } else { Vec::new() };
        metrics.set_topics_missing(missing.len());
        let (starved, partitions) = if up {
            topics.starved()
        } else {
            (Vec::new(), 0)
        };
        metrics.set_partitions_under_min_isr(partitions);
        missing.extend(starved);
        if let Ok(mut m) = self.missing.lock() {
            *m = missing;
        }
        if let Ok(mut d) = self.write_denials.lock() {
            *d = topics.write_denials();
        }
    }

    /// When librdkafka refused a broker's certificate, finds out why (the
    /// name, the expiry, the CA); forgets it once Kafka answers.
    async fn look_at_certificate(&self, up: bool) {
        let refused = !up
            && self
                .events
                .connection_refused()
                .is_some_and(|why| why.contains("certificate verify failed"));
        let found = match (&self.certificate_check, refused) {
            (Some(check), true) => check.run(CERTIFICATE_CHECK_WITHIN).await,
            _ => None,
        };
        if let Ok(mut said) = self.certificate_refused.lock()
            && *said != found
        {
            if let Some(f) = &found {
                events::kafka_certificate_refused(f);
            }
            *said = found;
        }
    }

    /// One check of the topics' settings (see `Topics::check_settings`).
    pub(crate) async fn check_settings(&self, topics: &Topics, metrics: &Metrics) {
        topics.check_settings().await;
        let problems = topics.config_problems();
        metrics.set_kafka_config_problems(problems.len());
        if let Ok(mut p) = self.config_problems.lock() {
            *p = problems;
        }
    }

    /// Runs `check` every `interval` until shutdown, and beside it the
    /// topic-settings check (slow or unanswered DescribeConfigs must not
    /// hold readiness up).
    pub async fn run(
        self: Arc<Self>,
        topics: Arc<Topics>,
        metrics: Arc<Metrics>,
        interval: Duration,
        mut shutdown: Signal,
    ) {
        let rounds = async {
            loop {
                self.check(&topics, &metrics).await;
                let next = tokio::time::Instant::now() + interval;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(next) => break,
                        // A librdkafka error: was it fatal? Asked at once,
                        // so readiness fails within moments, not a round
                        // later.
                        _ = self.events.errors.notified() => topics.check_fatal(),
                        _ = shutdown.fired() => return,
                    }
                }
            }
        };
        let settings = async {
            loop {
                self.check_settings(&topics, &metrics).await;
                tokio::time::sleep(interval).await;
            }
        };
        // The rounds end at shutdown; the settings loop goes with them.
        tokio::select! {
            _ = rounds => {}
            _ = settings => {}
        }
    }
}

#[cfg(test)]
mod tests;
