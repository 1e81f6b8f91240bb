//! Topics exist before anything is published to them.
//!
//! The bridge never relies on the broker's auto-create setting (production
//! clusters usually turn it off, and where it is on it creates topics with
//! whatever defaults the broker has). It creates the topics its routes name
//! through the admin API at start-up — every topic a delivery can go to:
//! the routed ones, the fallback and the dead-letter topic — with the
//! configured partitions, replication and settings, and keeps trying in the
//! readiness loop. When Kafka refuses to create one, the cause and the
//! setting that fixes it (e.g. "the cluster has 1 broker; set
//! topics.replication_factor = 1") are logged once, shown by `/readyz` and
//! given as the 503's body. With `topics.create = false` it only checks: a
//! missing topic fails readiness and deliveries routed to it get 503, with a
//! log line that names the topic.
//!
//! Beside the readiness rounds, the settings of the existing topics (and
//! the broker's record limit) are read every `kafka.health_interval`, and
//! any that break a promise of the bridge are named: see [`checks`].

mod checks;
mod config;
mod creation;
mod serving;
mod settings_check;
mod state;

use state::{MISSING, NOT_SERVING, PRESENT, TopicState};

pub use checks::{ConfigProblem, Needs};
pub use config::{TopicSpec, TopicsConfig};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::Producer as _;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::error::BridgeError;
use crate::kafka::KafkaConfig;
use crate::kafka::client::{ClientEvents, KafkaContext, Producer, base_client_config};
use crate::route::Route;
use crate::telemetry::logging::LastSaid;
use checks::{Role, TopicFacts};

/// Wait after DescribeConfigs failed before asking again.
const SETTINGS_RETRY: Duration = Duration::from_secs(60);

pub struct Topics {
    /// Indexed by route id.
    by_route: Vec<Arc<TopicState>>,
    /// One entry per distinct topic name.
    all: Vec<Arc<TopicState>>,
    /// Every question about one topic (is it there, does each partition
    /// answer) goes through this client, not the producer: a topic the
    /// producer is asked about by name joins the partitions its broker
    /// threads walk at every wake-up, written to or not (19 topics of 6
    /// partitions in the bench, against the one it wrote;
    /// docs/performance.md). The producer learns a topic when it first
    /// writes to it.
    admin: Arc<AdminClient<KafkaContext>>,
    /// The whole cluster's metadata (see [`Topics::fetch_metadata`]) and
    /// its fatal error.
    producer: Producer,
    /// Shared by every Kafka client: log throttle and fatal errors.
    events: Arc<ClientEvents>,
    settings: TopicsConfig,
    admin_timeout: Duration,
    /// Brokers in the last metadata: explains a refused replication factor.
    brokers: AtomicUsize,
    /// What the configuration needs from the cluster (record size,
    /// durability, ledger retention).
    needs: Needs,
    /// The duplicates ledger, when duplicate detection is on: its settings
    /// are checked too.
    ledger: Option<String>,
    /// Settings of existing topics that break a promise, as of the last
    /// round.
    problems: std::sync::Mutex<Vec<ConfigProblem>>,
    /// The last thing said about the broker's record limit, or about not
    /// being able to read settings: said again only when it changes.
    said_broker: LastSaid,
    said_unchecked: LastSaid,
    /// The same for the brokers' settings (DescribeConfigs on the Cluster).
    said_broker_unchecked: LastSaid,
    /// After DescribeConfigs failed: no new try before then.
    settings_retry_at: std::sync::Mutex<Option<Instant>>,
    /// Serialises checks and creations so a burst to a new topic makes one
    /// admin call, not one per request.
    ensure_lock: Mutex<()>,
}

impl Topics {
    /// `ledger`: the duplicates ledger's topic, when detection is on; its
    /// settings are checked too.
    pub fn new(
        routes: &[Route],
        kafka: &KafkaConfig,
        settings: TopicsConfig,
        needs: Needs,
        ledger: Option<String>,
        producer: Producer,
        events: Arc<ClientEvents>,
    ) -> Result<Topics, KafkaError> {
        let admin: AdminClient<KafkaContext> = base_client_config(kafka)
            .create_with_context(KafkaContext::other_client(events.clone()))?;
        // Every topic a delivery can go to is checked (and created) from
        // the start, the fallback and dead-letter topics too: a topic that
        // cannot be created must fail readiness before a delivery needs it.
        let mut by_name: BTreeMap<Arc<str>, Arc<TopicState>> = BTreeMap::new();
        for r in routes {
            by_name
                .entry(r.topic.clone())
                .or_insert_with(|| Arc::new(TopicState::new(r.topic.clone())));
        }
        let by_route = routes
            .iter()
            .filter_map(|r| by_name.get(&r.topic).cloned())
            .collect();
        let all = by_name.into_values().collect();
        Ok(Topics {
            by_route,
            all,
            admin: Arc::new(admin),
            producer,
            events,
            settings,
            admin_timeout: kafka.admin_timeout,
            brokers: AtomicUsize::new(0),
            needs,
            ledger,
            problems: std::sync::Mutex::new(Vec::new()),
            said_broker: LastSaid::default(),
            said_unchecked: LastSaid::default(),
            said_broker_unchecked: LastSaid::default(),
            settings_retry_at: std::sync::Mutex::new(None),
            ensure_lock: Mutex::new(()),
        })
    }

    pub fn settings(&self) -> &TopicsConfig {
        &self.settings
    }

    /// Whether the producer hit a fatal error; if so, tells everyone (see
    /// [`ClientEvents::set_fatal`]). A cheap local call, no network.
    pub(crate) fn check_fatal(&self) {
        if self.events.fatal().is_none()
            && let Some((code, reason)) = self.producer.client().fatal_error()
        {
            self.events.set_fatal(&format!("{code}: {reason}"));
        }
    }

    /// The librdkafka context for another client of the bridge (the
    /// duplicates ledger's consumer): same log throttle, same fatal signal.
    pub(crate) fn client_context(&self) -> KafkaContext {
        KafkaContext::other_client(self.events.clone())
    }

    /// Returns once the route's topic is known to exist, creating it if
    /// configured to; fails with the topic's name otherwise, and with the
    /// cause when Kafka refused to create it.
    pub(crate) async fn ensure(&self, route: &Route, deadline: Instant) -> Result<(), BridgeError> {
        let st = &self.by_route[route.id];
        // Kafka denied the last write lately: answer at once (see
        // DENIAL_RETRY).
        if st.denied_lately() {
            return Err(BridgeError::WriteDenied {
                topic: st.name.to_string(),
            });
        }
        if st.state.load(Ordering::Acquire) == PRESENT {
            return Ok(());
        }
        let not_creatable = |cause| BridgeError::TopicNotCreatable {
            topic: st.name.to_string(),
            cause,
        };
        // Kafka already refused: answer at once. The readiness loop tries
        // again every round and clears the cause once the topic exists.
        if let Some(cause) = st.cause() {
            return Err(not_creatable(cause));
        }
        // Kafka just said its creation did not finish: answer at once (see
        // CREATION_RETRY).
        let unfinished = |cause| BridgeError::TopicCreationUnfinished {
            topic: st.name.to_string(),
            cause,
        };
        if let Some(cause) = st.unfinished_lately() {
            return Err(unfinished(cause));
        }
        let _guard = tokio::time::timeout_at(deadline, self.ensure_lock.lock())
            .await
            .map_err(|_| BridgeError::KafkaUnavailable)?;
        if st.state.load(Ordering::Acquire) == PRESENT {
            return Ok(());
        }
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .min(self.admin_timeout);
        let metadata = self
            .fetch_metadata(budget)
            .await
            .map_err(|_| BridgeError::KafkaUnavailable)?;
        self.apply(&metadata);
        if st.state.load(Ordering::Acquire) == PRESENT {
            return Ok(());
        }
        if st.state.load(Ordering::Acquire) == MISSING {
            if self.settings.create {
                // The outcome is recorded in the topic's state and cause.
                let _ = self.create(std::slice::from_ref(&st.name), budget).await;
            } else {
                self.say_missing(st);
            }
        }
        if st.state.load(Ordering::Acquire) == NOT_SERVING {
            let budget = deadline.saturating_duration_since(Instant::now());
            self.verify_serving(st, budget).await;
        }
        match (st.state.load(Ordering::Acquire), st.cause()) {
            (PRESENT, _) => Ok(()),
            (_, Some(cause)) => Err(not_creatable(cause)),
            (NOT_SERVING, None) => Err(BridgeError::TopicNotServing {
                topic: st.name.to_string(),
                cause: st.not_serving.get().unwrap_or_default(),
            }),
            _ => match st.unfinished_lately() {
                Some(cause) => Err(unfinished(cause)),
                None => Err(BridgeError::TopicMissing(st.name.to_string())),
            },
        }
    }

    /// Waits (off the async workers) until every partition of the topic
    /// answers on its leader, within `budget`; then it is present. Only
    /// partitions not yet seen serving are asked.
    async fn verify_serving(&self, st: &TopicState, budget: Duration) {
        let from = st.serving.load(Ordering::Acquire);
        let started = Instant::now();
        match self.wait_serving(&st.name, from, budget).await {
            Ok(partitions) => {
                st.serving.store(partitions, Ordering::Release);
                st.state.store(PRESENT, Ordering::Release);
                st.set_not_serving(None);
                if from < partitions {
                    info!(
                        topic = %st.name,
                        partitions,
                        new_partitions = partitions - from,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "every partition of the topic answers on its leader: writing to it"
                    );
                }
            }
            Err(cause) => st.set_not_serving(Some(cause)),
        }
    }

    /// Checks every listed topic that has partitions not yet seen serving,
    /// one after the other within `budget` in all.
    async fn verify_all_serving(&self, budget: Duration) {
        let until = Instant::now() + budget;
        for t in &self.all {
            if t.state.load(Ordering::Acquire) == NOT_SERVING {
                self.verify_serving(t, until.saturating_duration_since(Instant::now()))
                    .await;
            }
        }
    }

    fn say_missing(&self, st: &TopicState) {
        if !st.said_missing.swap(true, Ordering::AcqRel) {
            warn!(topic = %st.name, "topic does not exist and topics.create is false: deliveries routed to it get 503 and readiness fails until it is created");
        }
    }

    /// One readiness round: refresh what exists, create what is missing.
    /// Fails when Kafka did not answer; the caller logs that once per
    /// change, not every round.
    pub async fn refresh(&self) -> Result<(), KafkaError> {
        let metadata = self.fetch_metadata(self.admin_timeout).await?;
        self.apply(&metadata);
        let missing: Vec<&TopicState> = self
            .all
            .iter()
            .filter(|t| t.state.load(Ordering::Acquire) != PRESENT)
            .map(|t| &**t)
            .collect();
        let missing: Vec<&TopicState> = missing
            .into_iter()
            .filter(|t| t.state.load(Ordering::Acquire) != NOT_SERVING)
            .collect();
        if !missing.is_empty() {
            if self.settings.create {
                let names: Vec<Arc<str>> = missing.iter().map(|t| t.name.clone()).collect();
                let _guard = self.ensure_lock.lock().await;
                let _ = self.create(&names, self.admin_timeout).await;
            } else {
                for t in missing {
                    self.say_missing(t);
                }
            }
        }
        self.verify_all_serving(self.admin_timeout).await;
        Ok(())
    }

    /// Topics not (yet) known to exist, each with why when Kafka refused to
    /// create it: the readiness verdict.
    pub fn missing(&self) -> Vec<String> {
        self.all
            .iter()
            .filter(|t| t.state.load(Ordering::Acquire) != PRESENT)
            .map(|t| match t.cause() {
                Some(cause) => format!("topic {} missing and cannot be created: {cause}", t.name),
                None if t.state.load(Ordering::Acquire) == NOT_SERVING => format!(
                    "topic {} not serving yet: {}",
                    t.name,
                    t.not_serving
                        .get()
                        .unwrap_or_else(|| "its partitions' leaders are being asked".to_string())
                ),
                None if let Some(why) = t.unfinished.get() => {
                    format!("topic {} missing: {why}", t.name)
                }
                None if !self.settings.create => {
                    format!(
                        "topic {} missing (topics.create is false: create it)",
                        t.name
                    )
                }
                None => format!("topic {} missing", t.name),
            })
            .collect()
    }

    /// The whole cluster's metadata, through the producer: this keeps it
    /// connected from the start, which its idempotent or transactional
    /// state needs (its producer ID, which readiness waits for; a fatal
    /// refusal of it), and, asking about no topic by name, adds none to
    /// the partitions it walks (see `Topics::admin`).
    async fn fetch_metadata(&self, budget: Duration) -> Result<Metadata, KafkaError> {
        // librdkafka's metadata call blocks its thread; keep it off the
        // async workers.
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, budget))
            .await
            .map_err(|_| KafkaError::Canceled)?
    }

    fn apply(&self, metadata: &Metadata) {
        self.brokers
            .store(metadata.brokers().len(), Ordering::Release);
        for t in &self.all {
            let listed = metadata
                .topics()
                .iter()
                .find(|m| m.name() == &*t.name)
                .filter(|m| m.error().is_none())
                .map_or(0, |m| m.partitions().len());
            let state = if listed == 0 {
                // Gone (or never there): a topic created again under the
                // same name must be seen serving afresh.
                t.serving.store(0, Ordering::Release);
                MISSING
            } else if t.serving.load(Ordering::Acquire) >= listed {
                PRESENT
            } else {
                // New, or partitions were added: not written to until
                // each answers (see `serving`).
                NOT_SERVING
            };
            t.state.store(state, Ordering::Release);
            if listed > 0 {
                t.set_cause(None);
                t.set_unfinished(None);
                t.said_missing.store(false, Ordering::Release);
            }
            // The topic's own setting, as the settings check read it: not
            // checked until then (a topic made elsewhere may differ from
            // what the bridge creates).
            let min_insync = t.min_insync.load(Ordering::Acquire);
            let partitions: Vec<(i32, usize)> = metadata
                .topics()
                .iter()
                .find(|m| m.name() == &*t.name)
                .map(|m| {
                    m.partitions()
                        .iter()
                        .map(|p| (p.id(), p.isr().len()))
                        .collect()
                })
                .unwrap_or_default();
            t.set_starved(state::starvation(&t.name, &partitions, min_insync));
        }
    }
}

#[cfg(test)]
mod tests;
