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
mod serving;

pub use checks::{ConfigProblem, Needs};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Create missing topics through the admin API. When false, a missing
    /// topic fails readiness and deliveries routed to it get 503.
    pub create: bool,
    /// Partitions of topics the bridge creates.
    pub partitions: i32,
    /// Replication factor of topics the bridge creates.
    pub replication_factor: i32,
    /// Topic-level settings for topics the bridge creates
    /// (`min.insync.replicas`, `retention.ms`, ...). Laid over the defaults
    /// key by key: setting `retention.ms` must not drop
    /// `min.insync.replicas=2`, or `acks=all` would quietly mean one replica.
    /// A default is changed by giving its key another value.
    #[serde(deserialize_with = "settings_over_defaults")]
    pub settings: BTreeMap<String, String>,
}

/// Topic settings every created topic gets unless configured otherwise.
fn default_topic_settings() -> BTreeMap<String, String> {
    BTreeMap::from([("min.insync.replicas".to_string(), "2".to_string())])
}

impl TopicsConfig {
    /// Every problem of this section, each saying what to change.
    pub fn check(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if self.partitions < 1 && self.partitions != -1 {
            errs.push(format!(
                "topics.partitions {} must be at least 1 (or -1 for the broker default)",
                self.partitions
            ));
        }
        if self.replication_factor < 1 && self.replication_factor != -1 {
            errs.push(format!(
                "topics.replication_factor {} must be at least 1 (or -1 for the broker default)",
                self.replication_factor
            ));
        }
        errs
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            create: true,
            partitions: 6,
            replication_factor: 3,
            settings: default_topic_settings(),
        }
    }
}

fn settings_over_defaults<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let mut settings = default_topic_settings();
    settings.extend(crate::deserialize::property_map(d)?);
    Ok(settings)
}

/// A topic to create: name, partitions and topic-level settings (the
/// replication factor is `topics.replication_factor` for all).
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub settings: BTreeMap<String, String>,
}

/// Wait after DescribeConfigs failed before asking again.
const SETTINGS_RETRY: Duration = Duration::from_secs(60);

const UNKNOWN: u8 = 0;
/// Listed, and every partition's leader answered (see [`serving`]).
const PRESENT: u8 = 1;
const MISSING: u8 = 2;
/// Listed, but a partition (a new one, or one added since) has not yet
/// answered on its leader: nothing is written to it yet.
const NOT_SERVING: u8 = 3;

struct TopicState {
    name: Arc<str>,
    state: AtomicU8,
    /// Why Kafka refused to create it, naming the setting that fixes it;
    /// cleared once it exists.
    cannot_create: LastSaid,
    /// "missing and topics.create is false" was logged (once, not every
    /// readiness round).
    said_missing: AtomicBool,
    /// Partitions seen answering on their leaders; the topic is present
    /// once this reaches the partitions the last metadata listed.
    serving: AtomicUsize,
    /// Why a listed topic does not serve yet (the partition and Kafka's
    /// answer); cleared once it does.
    not_serving: LastSaid,
}

impl TopicState {
    fn cause(&self) -> Option<String> {
        self.cannot_create.get()
    }

    /// Records why the topic does not serve yet (or that it does now),
    /// logging only changes.
    fn set_not_serving(&self, cause: Option<String>) {
        if let Some(c) = self.not_serving.update(cause) {
            warn!(topic = %self.name, cause = %c, "topic exists but a partition's leader does not answer yet: nothing is written to it until it does; deliveries routed to it get 503");
        }
    }

    /// Records why creation failed (or that it no longer does), logging
    /// only changes: the readiness loop retries every few seconds.
    fn set_cause(&self, cause: Option<String>) {
        if let Some(c) = self.cannot_create.update(cause) {
            warn!(topic = %self.name, cause = %c, "topic does not exist and Kafka refused to create it: deliveries routed to it get 503 and readiness fails until it exists");
        }
    }
}

pub struct Topics {
    /// Indexed by route id.
    by_route: Vec<Arc<TopicState>>,
    /// One entry per distinct topic name.
    all: Vec<Arc<TopicState>>,
    admin: AdminClient<KafkaContext>,
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
            by_name.entry(r.topic.clone()).or_insert_with(|| {
                Arc::new(TopicState {
                    name: r.topic.clone(),
                    state: AtomicU8::new(UNKNOWN),
                    cannot_create: LastSaid::default(),
                    said_missing: AtomicBool::new(false),
                    serving: AtomicUsize::new(0),
                    not_serving: LastSaid::default(),
                })
            });
        }
        let by_route = routes
            .iter()
            .filter_map(|r| by_name.get(&r.topic).cloned())
            .collect();
        let all = by_name.into_values().collect();
        Ok(Topics {
            by_route,
            all,
            admin,
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
            settings_retry_at: std::sync::Mutex::new(None),
            ensure_lock: Mutex::new(()),
        })
    }

    pub fn settings(&self) -> &TopicsConfig {
        &self.settings
    }

    /// Whether the producer hit a fatal error; if so, tells everyone (see
    /// [`ClientEvents::set_fatal`]). A cheap local call, no network.
    pub fn check_fatal(&self) {
        if self.events.fatal().is_none()
            && let Some((code, reason)) = self.producer.client().fatal_error()
        {
            self.events.set_fatal(&format!("{code}: {reason}"));
        }
    }

    /// The librdkafka context for another client of the bridge (the
    /// duplicates ledger's consumer): same log throttle, same fatal signal.
    pub fn client_context(&self) -> KafkaContext {
        KafkaContext::other_client(self.events.clone())
    }

    /// Returns once the route's topic is known to exist, creating it if
    /// configured to; fails with the topic's name otherwise, and with the
    /// cause when Kafka refused to create it.
    pub async fn ensure(&self, route: &Route, deadline: Instant) -> Result<(), BridgeError> {
        let st = &self.by_route[route.id];
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
            _ => Err(BridgeError::TopicMissing(st.name.to_string())),
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

    /// Settings of existing topics that break a promise of the bridge, as
    /// of the last settings check.
    pub fn config_problems(&self) -> Vec<ConfigProblem> {
        self.problems.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Reads the settings of every existing topic the bridge uses (and the
    /// broker's record limit) and keeps what breaks a promise. Runs beside
    /// the readiness rounds, not in them: a cluster that does not answer
    /// DescribeConfigs (no permission, librdkafka's mock cluster) must not
    /// slow readiness down. When the settings cannot be read the last
    /// verdict stays, that is said once, and the next try waits a minute.
    pub async fn check_settings(&self) {
        let due = self.settings_retry_at.lock().map(|t| *t).unwrap_or(None);
        if due.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let Ok(metadata) = self.fetch_metadata(self.admin_timeout).await else {
            // Readiness says Kafka is unreachable; nothing to add here.
            return;
        };
        let (mut facts, broker) = self.settings_facts(&metadata);
        drop(metadata);
        let opts = AdminOptions::new().request_timeout(Some(self.admin_timeout));
        let specifiers: Vec<ResourceSpecifier<'_>> = facts
            .iter()
            .map(|(_, f)| ResourceSpecifier::Topic(&f.name))
            .collect();
        if !specifiers.is_empty() {
            let described = match self.admin.describe_configs(specifiers.iter(), &opts).await {
                Ok(d) => d,
                Err(e) => {
                    self.say_unchecked(Some(format!("{e}")));
                    if let Ok(mut t) = self.settings_retry_at.lock() {
                        *t = Some(Instant::now() + SETTINGS_RETRY);
                    }
                    return;
                }
            };
            for resource in described.into_iter().flatten() {
                let OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
                    continue;
                };
                let Some((_, f)) = facts.iter_mut().find(|(_, f)| &f.name == name) else {
                    continue;
                };
                let number = |key: &str| {
                    resource
                        .get(key)
                        .and_then(|e| e.value.as_deref())
                        .and_then(|v| v.trim().parse::<i64>().ok())
                };
                f.max_message_bytes = number("max.message.bytes");
                f.min_insync_replicas = number("min.insync.replicas");
                f.retention_ms = number("retention.ms");
            }
        }
        self.say_unchecked(None);
        let problems: Vec<ConfigProblem> = facts
            .iter()
            .flat_map(|(role, f)| checks::check_topic(*role, f, &self.needs))
            .collect();
        self.set_problems(problems);

        // One broker stands for all: the setting is cluster-wide in
        // practice, and librdkafka describes one broker per request.
        if let Some(id) = broker {
            let broker = [ResourceSpecifier::Broker(id)];
            if let Ok(d) = self.admin.describe_configs(broker.iter(), &opts).await {
                let limit = d
                    .iter()
                    .flatten()
                    .find_map(|r| r.get("message.max.bytes")?.value.as_deref()?.parse().ok());
                let note = limit.and_then(|l| checks::check_broker(id, l, &self.needs));
                if let Some(n) = self.said_broker.update(note) {
                    warn!(problem = %n, "Kafka broker setting");
                }
            }
        }
    }

    /// The existing topics to check, from the metadata (which cannot be
    /// held across an await), and a broker to ask about its limit.
    fn settings_facts(&self, metadata: &Metadata) -> (Vec<(Role, TopicFacts)>, Option<i32>) {
        let mut facts: Vec<(Role, TopicFacts)> = Vec::new();
        for m in metadata.topics() {
            let role = if self.all.iter().any(|t| &*t.name == m.name()) {
                Role::Delivery
            } else if self.ledger.as_deref() == Some(m.name()) {
                Role::Ledger
            } else {
                continue;
            };
            if m.error().is_some() || m.partitions().is_empty() {
                continue;
            }
            let replicas = m
                .partitions()
                .iter()
                .map(|p| p.replicas().len())
                .min()
                .unwrap_or(0);
            facts.push((
                role,
                TopicFacts {
                    name: m.name().to_string(),
                    replicas,
                    ..TopicFacts::default()
                },
            ));
        }
        (facts, metadata.brokers().first().map(|b| b.id()))
    }

    /// Keeps the new verdict, logging what appeared and what went away.
    fn set_problems(&self, new: Vec<ConfigProblem>) {
        let Ok(mut old) = self.problems.lock() else {
            return;
        };
        for p in new.iter().filter(|p| !old.contains(p)) {
            if p.blocking {
                warn!(problem = %p.text, "Kafka topic setting stops every write: not ready");
            } else {
                warn!(problem = %p.text, "Kafka topic setting breaks a promise of the bridge (listed by /readyz)");
            }
        }
        for p in old.iter().filter(|p| !new.contains(p)) {
            info!(problem = %p.text, "Kafka topic setting fixed");
        }
        *old = new;
    }

    fn say_unchecked(&self, error: Option<String>) {
        if let Some(e) = self.said_unchecked.update(error) {
            warn!(error = %e, "cannot read topic settings (DescribeConfigs) to check them; grant the bridge's principal DescribeConfigs on its topics");
        }
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
                t.said_missing.store(false, Ordering::Release);
            }
        }
    }

    /// Why Kafka refused to create a topic, with the setting to change.
    fn creation_cause(&self, code: RDKafkaErrorCode) -> String {
        let rf = self.settings.replication_factor;
        let brokers = self.brokers.load(Ordering::Acquire);
        let plural = if brokers == 1 { "" } else { "s" };
        use RDKafkaErrorCode as C;
        match code {
            C::InvalidReplicationFactor if brokers > 0 && rf > brokers as i32 => format!(
                "the cluster has {brokers} broker{plural}; set topics.replication_factor = {brokers} \
                 (it is {rf}), or -1 for the broker's default"
            ),
            C::InvalidReplicationFactor => format!(
                "Kafka refused replication factor {rf} ({code}); set topics.replication_factor to \
                 at most the number of brokers, or -1 for the broker's default"
            ),
            C::InvalidPartitions => format!(
                "Kafka refused {} partitions ({code}); set topics.partitions to at least 1, or -1 \
                 for the broker's default",
                self.settings.partitions
            ),
            C::InvalidConfig => {
                format!("Kafka refused a topic setting ({code}); check topics.settings")
            }
            C::PolicyViolation => format!(
                "the cluster's topic-creation policy refused it ({code}); create the topic by \
                 hand, or fit topics.partitions, topics.replication_factor and topics.settings \
                 to the policy"
            ),
            C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed => format!(
                "the bridge may not create topics ({code}); create the topic by hand, or grant \
                 the bridge's principal CREATE on it"
            ),
            _ => format!("Kafka refused to create it ({code})"),
        }
    }

    async fn create(&self, names: &[Arc<str>], budget: Duration) -> Result<(), String> {
        // Large enough for every body the bridge accepts (the broker's
        // default, 1 MiB + 12 bytes, is not); a larger value from
        // topics.settings is kept.
        let mut settings = self.settings.settings.clone();
        let given = settings
            .get("max.message.bytes")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        settings.insert(
            "max.message.bytes".into(),
            self.needs.record_bytes.max(given).to_string(),
        );
        let specs: Vec<TopicSpec> = names
            .iter()
            .map(|n| TopicSpec {
                name: n.to_string(),
                partitions: self.settings.partitions,
                settings: settings.clone(),
            })
            .collect();
        self.create_specs(&specs, budget).await
    }

    /// Makes sure a topic outside the routes (the duplicates ledger)
    /// exists, creating it with its own spec when `create` is set.
    pub async fn ensure_special(&self, spec: &TopicSpec, create: bool) -> Result<(), String> {
        let metadata = self
            .fetch_metadata(self.admin_timeout)
            .await
            .map_err(|e| format!("Kafka metadata request failed: {e}"))?;
        let exists = |m: &Metadata| {
            m.topics()
                .iter()
                .any(|t| t.name() == spec.name && !t.partitions().is_empty())
        };
        if !exists(&metadata) {
            if !create {
                return Err(format!(
                    "topic {} does not exist and creating it is turned off",
                    spec.name
                ));
            }
            // The broker count explains a refused replication factor.
            self.brokers
                .store(metadata.brokers().len(), Ordering::Release);
            let _guard = self.ensure_lock.lock().await;
            self.create_specs(std::slice::from_ref(spec), self.admin_timeout)
                .await?;
        }
        // Written to only once each partition answers (see `serving`).
        self.wait_serving(&spec.name, 0, self.admin_timeout)
            .await
            .map(drop)
            .map_err(|cause| format!("topic {} does not serve yet: {cause}", spec.name))
    }

    /// [`serving::wait_serving`] on the producer's client, off the async
    /// workers (librdkafka's metadata and watermark calls block).
    async fn wait_serving(
        &self,
        topic: &str,
        from: usize,
        budget: Duration,
    ) -> Result<usize, String> {
        let (producer, topic) = (self.producer.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            serving::wait_serving(producer.client(), &topic, from, budget)
        })
        .await
        .unwrap_or_else(|e| Err(format!("the check did not finish: {e}")))
    }

    /// Creates the topics; fails with each refused topic and its cause.
    /// Causes of routed topics are also kept for readiness and answers.
    async fn create_specs(&self, specs: &[TopicSpec], budget: Duration) -> Result<(), String> {
        let new: Vec<NewTopic<'_>> = specs
            .iter()
            .map(|spec| {
                let replication = TopicReplication::Fixed(self.settings.replication_factor);
                let mut t = NewTopic::new(&spec.name, spec.partitions, replication);
                for (k, v) in &spec.settings {
                    t = t.set(k, v);
                }
                t
            })
            .collect();
        let opts = AdminOptions::new()
            .request_timeout(Some(budget))
            .operation_timeout(Some(budget));
        let results = match self.admin.create_topics(new.iter(), &opts).await {
            Ok(r) => r,
            Err(e) => {
                let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                warn!(error = %e, topics = ?names, "creating topics failed");
                return Err(format!("creating topics failed: {e}"));
            }
        };
        let mut refused = Vec::new();
        for r in results {
            let (name, outcome) = match &r {
                Ok(name) => (name.as_str(), Ok(true)),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => (name.as_str(), Ok(false)),
                Err((name, code)) => (name.as_str(), Err(*code)),
            };
            match outcome {
                Ok(created) => {
                    if created {
                        info!(
                            topic = name,
                            replication_factor = self.settings.replication_factor,
                            "created topic"
                        );
                    }
                    // Created is not serving yet: the leaders may still
                    // answer NOT_LEADER (see `serving`).
                    if let Some(t) = self.all.iter().find(|t| &*t.name == name) {
                        t.set_cause(None);
                        t.state.store(NOT_SERVING, Ordering::Release);
                    }
                }
                Err(code) => {
                    let cause = self.creation_cause(code);
                    match self.all.iter().find(|t| &*t.name == name) {
                        // Logged by set_cause, on change only.
                        Some(t) => t.set_cause(Some(cause.clone())),
                        None => warn!(topic = name, cause = %cause, "could not create topic"),
                    }
                    refused.push(format!("could not create topic {name}: {cause}"));
                }
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(refused.join("; "))
        }
    }
}

#[cfg(test)]
mod tests;
