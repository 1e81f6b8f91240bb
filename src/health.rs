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
use crate::kafka::client::ClientEvents;
use crate::kafka::topics::{ConfigProblem, Topics};
use crate::kafka::transactions::GroupCommit;
use crate::signal::Signal;
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

pub struct Health {
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
    /// The duplicates ledger, when duplicate detection is on.
    ledger: Option<Arc<LedgerState>>,
    /// The Kafka clients' shared events: a fatal error fails readiness for
    /// good; Kafka answering ends a bout of throttled librdkafka lines.
    events: Arc<ClientEvents>,
    /// The transactional writers, when `kafka.transactions` is on: not
    /// ready until one is initialised (an ACL refusal is named).
    transactions: Option<Arc<GroupCommit>>,
}

impl Health {
    pub fn new(ledger: Option<Arc<LedgerState>>, events: Arc<ClientEvents>) -> Health {
        Health {
            kafka_up: AtomicBool::new(false),
            checked: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            missing: Mutex::new(Vec::new()),
            config_problems: Mutex::new(Vec::new()),
            ledger,
            events,
            transactions: None,
        }
    }

    /// Readiness also waits for a transactional writer.
    pub(crate) fn with_transactions(mut self, transactions: Option<Arc<GroupCommit>>) -> Health {
        self.transactions = transactions;
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
            reasons.push("Kafka metadata not reachable".to_string());
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
    /// short): `/readyz` lists them whether ready or not.
    pub fn warnings(&self) -> Vec<String> {
        self.config_problems
            .lock()
            .map(|p| {
                p.iter()
                    .filter(|p| !p.blocking)
                    .map(|p| p.text.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn set_shutting_down(&self) {
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
        let missing = if up { topics.missing() } else { Vec::new() };
        metrics.set_topics_missing(missing.len());
        if let Ok(mut m) = self.missing.lock() {
            *m = missing;
        }
    }

    /// One check of the topics' settings (see `Topics::check_settings`).
    pub async fn check_settings(&self, topics: &Topics, metrics: &Metrics) {
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
mod tests {
    use super::*;

    use crate::kafka::KafkaConfig;
    use crate::kafka::publish::create_producer;
    use crate::kafka::topics::TopicsConfig;

    fn events() -> Arc<ClientEvents> {
        Arc::new(ClientEvents::default())
    }

    /// Readiness as it is when every round went well and no ledger is used.
    fn all_well(ledger: Option<Arc<LedgerState>>, events: Arc<ClientEvents>) -> Health {
        let h = Health::new(ledger, events);
        h.kafka_up.store(true, Ordering::Release);
        h.checked.store(true, Ordering::Release);
        h
    }

    fn reasons(h: &Health) -> Vec<String> {
        h.readiness().expect_err("not ready")
    }

    #[test]
    fn readiness_passes_when_kafka_answers_and_nothing_is_missing() {
        let h = all_well(None, events());
        assert_eq!(h.readiness(), Ok(()));
        assert!(h.warnings().is_empty());
    }

    #[test]
    fn readiness_fails_until_kafka_answered_a_metadata_request() {
        let h = Health::new(None, events());
        assert_eq!(reasons(&h), ["Kafka metadata not reachable"]);
    }

    /// Issue #19: with statistics on, readiness waits for the idempotent
    /// producer's ID, and fails again while librdkafka asks for a new one.
    #[test]
    fn readiness_waits_for_the_producer_id_the_statistics_report() {
        let ev = events();
        ev.watch_producer_id();
        let h = all_well(None, ev.clone());
        let r = reasons(&h);
        assert!(
            r.len() == 1 && r[0].contains("producer's ID is not known yet"),
            "{r:?}"
        );
        ev.producer_id_state(Some("WaitPID"));
        let r = reasons(&h);
        assert!(
            r.len() == 1 && r[0].contains("idempotence state WaitPID"),
            "{r:?}"
        );
        ev.producer_id_state(Some("Assigned"));
        assert_eq!(h.readiness(), Ok(()));
        // An epoch bump: no ID until Kafka grants a new one.
        ev.producer_id_state(Some("WaitPID"));
        assert!(h.readiness().is_err());
    }

    #[test]
    fn with_statistics_off_readiness_does_not_wait_for_a_producer_id_it_cannot_see() {
        let ev = events();
        let h = all_well(None, ev.clone());
        ev.producer_id_state(Some("WaitPID"));
        assert_eq!(h.readiness(), Ok(()));
    }

    #[test]
    fn set_shutting_down_fails_readiness_at_once() {
        let h = all_well(None, events());
        assert!(h.readiness().is_ok());
        h.set_shutting_down();
        assert_eq!(reasons(&h), ["shutting down"]);
    }

    #[test]
    fn a_missing_topic_fails_readiness_with_its_line() {
        let h = all_well(None, events());
        *h.missing.lock().expect("lock") = vec!["topic t missing".to_string()];
        assert_eq!(reasons(&h), ["topic t missing"]);
    }

    #[test]
    fn a_ledger_not_caught_up_fails_readiness() {
        let h = all_well(Some(Arc::new(LedgerState::default())), events());
        assert_eq!(reasons(&h), ["duplicates ledger not caught up"]);
    }

    #[test]
    fn a_fatal_producer_error_fails_readiness_for_good_with_its_reason() {
        let ev = events();
        let h = all_well(None, ev.clone());
        ev.set_fatal("ClusterAuthorizationFailed: no");
        let r = reasons(&h);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].contains("fatal error") && r[0].contains("ClusterAuthorizationFailed: no"),
            "{r:?}"
        );
        // Nothing clears it: a second fatal error does not replace the first.
        ev.set_fatal("other");
        assert!(reasons(&h)[0].contains("ClusterAuthorizationFailed: no"));
    }

    #[test]
    fn a_blocking_topic_setting_fails_readiness_and_a_risky_one_is_only_a_warning() {
        let h = all_well(None, events());
        *h.config_problems.lock().expect("lock") = vec![
            ConfigProblem {
                text: "blocks".into(),
                blocking: true,
            },
            ConfigProblem {
                text: "risky".into(),
                blocking: false,
            },
        ];
        assert_eq!(reasons(&h), ["blocks"]);
        assert_eq!(h.warnings(), ["risky"]);
    }

    #[test]
    fn every_reason_is_given_at_once() {
        let ev = events();
        let h = Health::new(Some(Arc::new(LedgerState::default())), ev.clone());
        h.set_shutting_down();
        ev.set_fatal("f");
        *h.missing.lock().expect("lock") = vec!["topic t missing".to_string()];
        let r = reasons(&h);
        assert_eq!(r.len(), 5, "{r:?}");
        assert_eq!(r[0], "shutting down");
        assert!(r[1].contains("fatal error"), "{r:?}");
        assert_eq!(
            r[2..],
            [
                "Kafka metadata not reachable",
                "topic t missing",
                "duplicates ledger not caught up"
            ]
        );
    }

    // --- `check` against librdkafka's mock cluster -----------------------

    type Mock = crate::kafka::mock::Cluster;

    /// A mock cluster holding `present`, and the topics part of a bridge
    /// whose routes go to `routed` (`topics.create` off).
    fn topics(present: &[&str], routed: &[&str]) -> (Mock, Topics, Arc<ClientEvents>, Metrics) {
        let cluster = crate::kafka::mock::with_topics(present);
        let routes = crate::route::numbered(routed);
        let kafka = KafkaConfig {
            brokers: cluster.bootstrap_servers(),
            admin_timeout: Duration::from_millis(500),
            statistics_interval: Duration::ZERO,
            ..KafkaConfig::default()
        };
        let config = crate::config::Config::default();
        let ev = events();
        let metrics = Metrics::new(&routes);
        let producer = create_producer(
            &kafka,
            config.max_record_bytes(),
            Arc::new(Metrics::new(&routes)),
            ev.clone(),
        )
        .expect("producer");
        let t = Topics::new(
            &routes,
            &kafka,
            TopicsConfig {
                create: false,
                ..TopicsConfig::default()
            },
            config.topic_needs(),
            None,
            producer,
            ev.clone(),
        )
        .expect("topics");
        (cluster, t, ev, metrics)
    }

    #[tokio::test]
    async fn a_round_against_a_healthy_cluster_makes_it_ready() {
        let (_cluster, topics, ev, metrics) = topics(&["t.a"], &["t.a"]);
        let h = Health::new(None, ev);
        assert!(h.readiness().is_err(), "not ready before a round");
        h.check(&topics, &metrics).await;
        assert_eq!(h.readiness(), Ok(()));
    }

    #[tokio::test]
    async fn a_round_names_the_topic_that_is_missing() {
        let (_cluster, topics, ev, metrics) = topics(&["t.a"], &["t.a", "t.b"]);
        let h = Health::new(None, ev);
        h.check(&topics, &metrics).await;
        assert_eq!(
            reasons(&h),
            ["topic t.b missing (topics.create is false: create it)"]
        );
    }

    #[tokio::test]
    async fn a_round_while_kafka_is_down_says_so_and_lists_no_topic() {
        let (cluster, topics, ev, metrics) = topics(&["t.a"], &["t.a", "t.b"]);
        let h = Health::new(None, ev);
        h.check(&topics, &metrics).await;
        assert!(h.readiness().is_err());
        cluster.broker_down(1).expect("broker down");
        h.check(&topics, &metrics).await;
        // What is missing is unknown while Kafka does not answer.
        assert_eq!(reasons(&h), ["Kafka metadata not reachable"]);
    }
}
