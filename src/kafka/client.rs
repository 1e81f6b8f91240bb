//! What every Kafka client of the bridge shares: the librdkafka settings
//! they all start from ([`base_client_config`]), the callbacks
//! ([`KafkaContext`]: statistics into gauges, librdkafka's lines into the
//! log, fatal errors into readiness), and the events they report together
//! ([`ClientEvents`]). The producer, the transactional writers, the topic
//! checks, the ledger follower and `redrive` all build on it.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, warn};

use crate::kafka::KafkaConfig;
use crate::telemetry::events;
use crate::telemetry::logging::{Say, Throttle};
use crate::telemetry::metrics::Metrics;
use denials::Denials;

mod denials;

/// What every Kafka client of the bridge shares: one throttle for
/// librdkafka's trouble lines (all clients report the same outage), and the
/// first fatal error.
pub struct ClientEvents {
    throttle: Throttle,
    /// Set once, by the first fatal error of any client.
    fatal: watch::Sender<Option<String>>,
    /// Woken by every librdkafka error: time to ask whether it was fatal.
    pub errors: Notify,
    /// What the producer's statistics last said of its producer ID.
    producer_id: std::sync::Mutex<ProducerId>,
    /// librdkafka's last word on a connection that was opened but refused
    /// (SASL authentication, TLS handshake or certificate): a metadata
    /// request then fails with only "BrokerTransportFailure", so readiness
    /// names this instead of pointing at the network. Cleared once Kafka
    /// answers.
    connection_refused: std::sync::Mutex<Option<String>>,
    /// What the authorizer refused outside a request the bridge awaits:
    /// a topic's partitions to a transactional writer, a reader's group.
    denials: Denials,
    /// Set once, when a Kafka secret file changed: every client must be
    /// made again (see `kafka::secret_files`).
    restart: watch::Sender<Option<String>>,
}

/// The idempotent producer's ID, as its statistics report it: until
/// Kafka grants one (InitProducerId), or while librdkafka asks for a new
/// one after an epoch bump, nothing it holds is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProducerId {
    /// Statistics are off (`kafka.statistics_interval = 0s`): not known.
    NotWatched,
    /// Statistics are on; no report has come yet.
    NoReportYet,
    /// librdkafka's idempotence state of the last report (`Assigned` when
    /// the producer has its ID).
    State(String),
}

impl Default for ClientEvents {
    fn default() -> Self {
        ClientEvents::new(TROUBLE_SUMMARY_EVERY)
    }
}

/// At most one summary of librdkafka's repeated trouble lines this often.
const TROUBLE_SUMMARY_EVERY: Duration = Duration::from_secs(30);

/// Log target of the lines librdkafka's callbacks produce.
const TARGET: &str = "popbill_bridge::kafka";

impl ClientEvents {
    pub fn new(summary_every: Duration) -> ClientEvents {
        ClientEvents {
            throttle: Throttle::new(summary_every),
            fatal: watch::Sender::new(None),
            errors: Notify::new(),
            producer_id: std::sync::Mutex::new(ProducerId::NotWatched),
            connection_refused: std::sync::Mutex::new(None),
            denials: Denials::default(),
            restart: watch::Sender::new(None),
        }
    }

    /// Why librdkafka's last connection failed, when it was refused by
    /// authentication or TLS, not merely unreachable (see the field).
    pub(crate) fn connection_refused(&self) -> Option<String> {
        self.connection_refused.lock().ok()?.clone()
    }

    /// A librdkafka error: kept when it says a connection was refused by
    /// authentication or TLS. A broker refusing the client's certificate
    /// sends a TLS alert, which librdkafka reports as a mere transport
    /// failure ("Receive failed: …SSL routines::sslv3 alert bad
    /// certificate"); only the alert (OpenSSL's "… alert …" reasons) is
    /// taken from those, not an EOF of a broker that died mid-handshake.
    fn record_refusal(&self, error: &KafkaError, reason: &str) {
        let refused = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL) => true,
            Some(RDKafkaErrorCode::BrokerTransportFailure) => {
                reason.contains("SSL routines") && reason.contains(" alert ")
            }
            _ => false,
        };
        if refused && let Ok(mut r) = self.connection_refused.lock() {
            *r = Some(reason.to_string());
        }
    }

    /// Whether the authorizer refused a transactional write to `topic`
    /// within `within`.
    pub(crate) fn write_denied_within(&self, topic: &str, within: Duration) -> bool {
        self.denials.topic_within(topic, within)
    }

    /// What `/readyz` lists of the groups the authorizer refused.
    pub(crate) fn refused_groups(&self) -> Vec<String> {
        self.denials
            .groups()
            .iter()
            .map(|(g, operation)| denials::refused_group(g, operation))
            .collect()
    }

    /// The producer reports statistics: readiness waits until they say it
    /// has its producer ID.
    pub(crate) fn watch_producer_id(&self) {
        if let Ok(mut p) = self.producer_id.lock() {
            *p = ProducerId::NoReportYet;
        }
    }

    /// Why the producer cannot write yet for want of a producer ID, if so.
    /// `None` when it has one, or when statistics are off (then it is not
    /// known, and readiness does not wait).
    pub(crate) fn producer_id_problem(&self) -> Option<String> {
        let p = self.producer_id.lock().ok()?;
        match &*p {
            ProducerId::NotWatched => None,
            ProducerId::State(s) if s == "Assigned" => None,
            ProducerId::NoReportYet => Some(
                "the producer's ID is not known yet (waiting for librdkafka's first statistics report, every kafka.statistics_interval)".to_string(),
            ),
            ProducerId::State(s) => Some(format!(
                "the idempotent producer has no producer ID (librdkafka idempotence state {s}): nothing is written until Kafka grants one (InitProducerId)"
            )),
        }
    }

    /// The idempotence state of a producer statistics report.
    pub(crate) fn producer_id_state(&self, state: Option<&str>) {
        if let (Ok(mut p), Some(state)) = (self.producer_id.lock(), state)
            && *p != ProducerId::NotWatched
            && !matches!(&*p, ProducerId::State(s) if s == state)
        {
            *p = ProducerId::State(state.to_string());
        }
    }

    /// Asks the bridge's owner for an orderly restart (`reason`), once.
    pub(crate) fn request_restart(&self, reason: &str) {
        self.restart.send_if_modified(|r| {
            let first = r.is_none();
            if first {
                *r = Some(reason.to_string());
            }
            first
        });
    }

    /// Resolves with the reason once a restart was asked for.
    pub(crate) async fn wait_restart(&self) -> String {
        let mut rx = self.restart.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            // The sender lives in `self`: never resolve rather than invent.
            Err(_) => std::future::pending().await,
        }
    }

    /// The fatal error that stopped a client, if one did.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.borrow().clone()
    }

    /// Resolves with the reason once a client hit a fatal error.
    pub(crate) async fn wait_fatal(&self) -> String {
        let mut rx = self.fatal.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            // The sender lives in `self`, so it cannot be gone while we
            // borrow it; never resolve rather than invent a fatal error.
            Err(_) => std::future::pending().await,
        }
    }

    /// Kafka answered: ends a bout of trouble. Returns how many librdkafka
    /// lines were suppressed since the last one logged, if there was one.
    pub(crate) fn kafka_answered(&self) -> Option<u64> {
        if let Ok(mut r) = self.connection_refused.lock() {
            *r = None;
        }
        self.throttle.clear()
    }

    /// A librdkafka error or warning: logged at once when it starts a bout,
    /// otherwise counted and summarised.
    fn trouble(&self, error: bool, line: std::fmt::Arguments<'_>) {
        let every = humantime::format_duration(self.throttle.every());
        match self.throttle.hit(std::time::Instant::now()) {
            Say::Quiet => {}
            Say::First if error => error!(
                target: TARGET,
                "librdkafka: {line} (repeats are counted and summarised every {every} until Kafka answers)"
            ),
            Say::First => warn!(
                target: TARGET,
                "librdkafka: {line} (repeats are counted and summarised every {every} until Kafka answers)"
            ),
            Say::Summary { suppressed } => warn!(
                target: TARGET,
                suppressed,
                "librdkafka: {line} ({suppressed} similar lines suppressed in the last {every})"
            ),
        }
    }

    /// A fatal error: the client can never work again. Logged once, and
    /// published to readiness and to the owner of the bridge.
    pub(crate) fn set_fatal(&self, reason: &str) {
        let first = self.fatal.send_if_modified(|f| {
            if f.is_none() {
                *f = Some(reason.to_string());
                true
            } else {
                false
            }
        });
        if first {
            error!(
                target: TARGET,
                reason,
                "fatal Kafka client error: the producer can never write again; readiness fails and the bridge exits so that it is restarted with a new producer"
            );
        }
    }
}

/// librdkafka callbacks of every client the bridge makes: statistics become
/// gauges (producer only), log lines and errors become tracing events through
/// the shared [`ClientEvents`], fatal errors stop the bridge.
#[derive(Clone)]
pub struct KafkaContext {
    /// Present on the producer: its statistics feed the gauges.
    metrics: Option<Arc<Metrics>>,
    events: Arc<ClientEvents>,
    /// The consumer group of this client (a reader) and the operation it
    /// needs there, to name both when the authorizer refuses the group.
    group: Option<(Arc<str>, &'static str)>,
    /// A fatal error of this client stops the bridge. Not for the
    /// transactional writers: their group commit decides (a writer refused
    /// at start, by an ACL, keeps the bridge up and not ready, saying why).
    fatal_stops_bridge: bool,
    /// Its statistics tell readiness whether the producer has its ID (the
    /// idempotent producer; a transactional writer's readiness is its
    /// group commit's).
    producer_id: bool,
}

impl KafkaContext {
    /// The context of a client other than the producer (admin, consumer):
    /// same log throttle and fatal signal, no statistics.
    pub(crate) fn other_client(events: Arc<ClientEvents>) -> KafkaContext {
        KafkaContext {
            metrics: None,
            events,
            group: None,
            fatal_stops_bridge: true,
            producer_id: false,
        }
    }

    /// The context of the idempotent producer: its statistics feed the
    /// gauges and tell readiness whether it has its producer ID; a fatal
    /// error stops the bridge.
    pub(crate) fn idempotent_producer(
        metrics: Arc<Metrics>,
        events: Arc<ClientEvents>,
    ) -> KafkaContext {
        KafkaContext {
            metrics: Some(metrics),
            events,
            group: None,
            fatal_stops_bridge: true,
            producer_id: true,
        }
    }

    /// This context for a reader of `group`, needing `operation` there.
    pub(crate) fn in_group(mut self, group: &str, operation: &'static str) -> KafkaContext {
        self.group = Some((group.into(), operation));
        self
    }

    /// Whether the authorizer refused this reader's group.
    pub(crate) fn group_refused(&self) -> bool {
        let group = self.group.as_ref().map_or("", |(g, _)| g);
        self.events.denials.groups().iter().any(|(g, _)| g == group)
    }

    /// The context of a transactional writer: its statistics feed the
    /// gauges (the records go through it), and a fatal error is its group
    /// commit's to handle.
    pub(crate) fn transactional_writer(
        metrics: Arc<Metrics>,
        events: Arc<ClientEvents>,
    ) -> KafkaContext {
        KafkaContext {
            metrics: Some(metrics),
            events,
            group: None,
            fatal_stops_bridge: false,
            producer_id: false,
        }
    }
}

impl ClientContext for KafkaContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(m) = &self.metrics {
            m.record_kafka_stats(&statistics);
        }
        if self.producer_id {
            self.events
                .producer_id_state(statistics.eos.as_ref().map(|e| e.idemp_state.as_str()));
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        use RDKafkaLogLevel as L;
        self.events.denials.log_line(fac, message);
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                self.events.trouble(true, format_args!("{fac}: {message}"))
            }
            L::Warning => self.events.trouble(false, format_args!("{fac}: {message}")),
            L::Notice | L::Info => info!(target: TARGET, "librdkafka: {fac}: {message}"),
            L::Debug => debug!(target: TARGET, "librdkafka: {fac}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // The ledger follower asks for these (enable.partition.eof) and
        // takes them from its own queue; librdkafka also hands some to this
        // callback. The end of a partition is not trouble.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        self.events.record_refusal(&error, reason);
        // Said once by librdkafka, then retried without a word: kept, and
        // named on /readyz from then on.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed)
            && let Some((group, operation)) = &self.group
            && self.events.denials.group(group, operation)
        {
            events::kafka_group_refused(group, &denials::refused_group(group, operation));
        }
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) && self.fatal_stops_bridge {
            self.events.set_fatal(reason);
        } else {
            self.events.trouble(true, format_args!("{error}: {reason}"));
        }
        // librdkafka usually reports a fatal error with its cause's code
        // (e.g. ClusterAuthorizationFailed), the fatal flag out of reach of
        // this callback: ask the producer itself (see `Topics::check_fatal`).
        self.events.errors.notify_one();
    }
}

impl ConsumerContext for KafkaContext {}

pub type Producer = FutureProducer<KafkaContext>;

/// The librdkafka settings shared by every client the bridge makes: the
/// brokers, the pass-through properties (SASL, TLS, ...).
pub(crate) fn base_client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    c.set("client.id", &cfg.client_id);
    for (k, v) in &cfg.properties {
        c.set(k, v);
    }
    c
}

/// The settings of the bridge's readers (the ledger's follower, the
/// read-back that settles a commit, `redrive`): in `group`, whose offsets
/// librdkafka neither stores nor commits by itself; only records of
/// committed transactions (an aborted one was never written); and told when
/// a fetch Kafka allowed reaches a partition's end, which is what "read to
/// the end" is taken from.
pub(crate) fn reader_config(cfg: &KafkaConfig, group: &str) -> ClientConfig {
    let mut c = base_client_config(cfg);
    c.set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    c
}
