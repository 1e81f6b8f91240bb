//! Topics exist before anything is published to them.
//!
//! The bridge never relies on the broker's auto-create setting (production
//! clusters usually turn it off, and where it is on it creates topics with
//! whatever defaults the broker has). It creates the topics its routes name
//! through the admin API — at start-up for the configured routes, before the
//! first produce for the fallback — with the configured partitions,
//! replication and settings. With `topics.create = false` it only checks: a
//! missing topic fails readiness and deliveries routed to it get 503, with a
//! log line that names the topic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::Producer as _;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{Config, TopicsConfig};
use crate::error::BridgeError;
use crate::publish::{ClientEvents, KafkaContext, Producer, base_client_config};
use crate::route::Route;

/// A topic to create: name, partitions and topic-level settings (the
/// replication factor is `topics.replication_factor` for all).
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub settings: BTreeMap<String, String>,
}

const UNKNOWN: u8 = 0;
const PRESENT: u8 = 1;
const MISSING: u8 = 2;

struct TopicState {
    name: Arc<str>,
    /// Checked at start-up and by readiness; the fallback only on first use.
    eager: bool,
    state: AtomicU8,
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
    /// Serialises checks and creations so a burst to a new topic makes one
    /// admin call, not one per request.
    ensure_lock: Mutex<()>,
}

impl Topics {
    pub fn new(
        routes: &[Route],
        config: &Config,
        producer: Producer,
        events: Arc<ClientEvents>,
    ) -> Result<Topics, KafkaError> {
        let kafka = &config.kafka;
        let admin: AdminClient<KafkaContext> = base_client_config(kafka)
            .create_with_context(KafkaContext::other_client(events.clone()))?;
        // A topic is eager when any non-fallback route uses it.
        let mut by_name: BTreeMap<Arc<str>, Arc<TopicState>> = BTreeMap::new();
        for r in routes {
            let eager = routes.iter().any(|o| !o.is_fallback && o.topic == r.topic);
            by_name.entry(r.topic.clone()).or_insert_with(|| {
                Arc::new(TopicState {
                    name: r.topic.clone(),
                    eager,
                    state: AtomicU8::new(UNKNOWN),
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
            settings: config.topics.clone(),
            admin_timeout: kafka.admin_timeout,
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
    /// configured to; fails with the topic's name otherwise.
    pub async fn ensure(&self, route: &Route, deadline: Instant) -> Result<(), BridgeError> {
        let st = &self.by_route[route.id];
        if st.state.load(Ordering::Acquire) == PRESENT {
            return Ok(());
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
        if self.settings.create {
            self.create(std::slice::from_ref(&st.name), budget).await;
        } else {
            warn!(topic = %st.name, "topic does not exist and topics.create is false: answering 503 until it is created");
        }
        match st.state.load(Ordering::Acquire) {
            PRESENT => Ok(()),
            _ => Err(BridgeError::TopicMissing(st.name.to_string())),
        }
    }

    /// One readiness round: refresh what exists, create what is missing
    /// (eager topics only). Fails when Kafka did not answer; the caller
    /// logs that once per change, not every round.
    pub async fn refresh(&self) -> Result<(), KafkaError> {
        let metadata = self.fetch_metadata(self.admin_timeout).await?;
        self.apply(&metadata);
        let missing: Vec<Arc<str>> = self
            .all
            .iter()
            .filter(|t| t.eager && t.state.load(Ordering::Acquire) != PRESENT)
            .map(|t| t.name.clone())
            .collect();
        if !missing.is_empty() {
            if self.settings.create {
                let _guard = self.ensure_lock.lock().await;
                self.create(&missing, self.admin_timeout).await;
            } else {
                for t in &missing {
                    warn!(topic = %t, "topic does not exist and topics.create is false: not ready");
                }
            }
        }
        Ok(())
    }

    /// Eager topics not (yet) known to exist: the readiness verdict.
    pub fn missing(&self) -> Vec<Arc<str>> {
        self.all
            .iter()
            .filter(|t| {
                let s = t.state.load(Ordering::Acquire);
                s != PRESENT && (t.eager || s == MISSING && !self.settings.create)
            })
            .map(|t| t.name.clone())
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
        for t in &self.all {
            let found = metadata
                .topics()
                .iter()
                .find(|m| m.name() == &*t.name)
                .is_some_and(|m| m.error().is_none() && !m.partitions().is_empty());
            t.state
                .store(if found { PRESENT } else { MISSING }, Ordering::Release);
        }
    }

    async fn create(&self, names: &[Arc<str>], budget: Duration) {
        let specs: Vec<TopicSpec> = names
            .iter()
            .map(|n| TopicSpec {
                name: n.to_string(),
                partitions: self.settings.partitions,
                settings: self.settings.settings.clone(),
            })
            .collect();
        self.create_specs(&specs, budget).await;
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
        if exists(&metadata) {
            return Ok(());
        }
        if !create {
            return Err(format!(
                "topic {} does not exist and creating it is turned off",
                spec.name
            ));
        }
        let _guard = self.ensure_lock.lock().await;
        if self
            .create_specs(std::slice::from_ref(spec), self.admin_timeout)
            .await
        {
            Ok(())
        } else {
            Err(format!("could not create topic {}", spec.name))
        }
    }

    /// Returns whether every topic now exists.
    async fn create_specs(&self, specs: &[TopicSpec], budget: Duration) -> bool {
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
                return false;
            }
        };
        let mut all_ok = true;
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
                    if let Some(t) = self.all.iter().find(|t| &*t.name == name) {
                        t.state.store(PRESENT, Ordering::Release);
                    }
                }
                Err(code) => {
                    all_ok = false;
                    warn!(topic = name, error = %code, "could not create topic");
                }
            }
        }
        all_ok
    }
}
