//! popbill-bridge receives POPBiLL webhook deliveries and publishes each to
//! Kafka, answering `OK` only once Kafka has confirmed the write.
//!
//! The data path, one module a step:
//!
//! - [`server`]: accepts connections (optionally [`tls`]) and serves
//!   HTTP/1.1 with hyper, within the configured limits;
//! - [`webhook`]: the endpoint that strings the steps together:
//!   - [`access`] and [`auth`]: only POPBiLL gets in;
//!   - [`delivery`]: request → parsed, checked delivery;
//!   - [`route`]: delivery → topic, from configuration only;
//!   - [`identity`] and [`dedup`]: is this event already in Kafka? backed
//!     by the [`ledger`] topic shared by all replicas;
//!   - [`topics`]: makes sure the topic exists before the first write;
//!   - [`publish`] and [`record`]: the Kafka record and its delivery report;
//!   - [`answer`]: the HTTP response; [`error`] maps failures to statuses;
//!   - [`outcome`]: one log line and the metrics of each delivery;
//! - [`admin`] and [`health`]: `/metrics`, `/healthz`, `/readyz`;
//! - [`metrics`]: every Prometheus metric;
//! - [`config`] and [`cli`]: the typed configuration and its sources;
//! - [`dev`]: the embedded, non-durable Kafka of `--dev`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod dedup;
pub mod delivery;
pub mod error;
pub mod health;
pub mod http;
pub mod kafka;
pub mod route;
pub mod telemetry;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::Producer as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Config;
use crate::dedup::ledger;
use crate::health::Health;
use crate::http::{access, admin, auth, server, tls};
use crate::kafka::publish;
use crate::kafka::publish::Publisher;
use crate::kafka::topics::Topics;
use crate::route::Router;
use crate::telemetry::metrics::Metrics;

/// Why the bridge could not start. Each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("routes: {0}")]
    Routes(String),
    #[error("{0}")]
    Trust(String),
    /// Already redacted: librdkafka's messages quote property values.
    #[error("cannot create the Kafka client (check kafka.properties): {0}")]
    Kafka(String),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The admin port's limits: few, local clients (probes, Prometheus).
const ADMIN_LIMITS: server::Limits = server::Limits {
    max_connections: 64,
    max_headers: 64,
    max_header_bytes: 16 * 1024,
    header_read_timeout: Duration::from_secs(10),
};

/// A started bridge: its bound addresses and the handle to stop it.
pub struct RunningBridge {
    pub webhook_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    health: Arc<Health>,
    app: Arc<webhook::App>,
    /// Kafka clients' shared events: the fatal error that ends the bridge.
    kafka_events: Arc<publish::ClientEvents>,
    stop_webhook: watch::Sender<bool>,
    stop_admin: watch::Sender<bool>,
    webhook_task: JoinHandle<bool>,
    admin_task: JoinHandle<bool>,
    health_task: JoinHandle<()>,
    follower_task: Option<JoinHandle<()>>,
    ledger_task: Option<JoinHandle<()>>,
    shutdown_delay: Duration,
    shutdown_timeout: Duration,
}

/// What shutdown managed to finish.
#[derive(Debug)]
pub struct ShutdownReport {
    /// Every open request got its answer within the budget.
    pub drained: bool,
    /// Records still unconfirmed by Kafka after the final flush.
    pub unflushed: i32,
}

/// Validates the configuration, builds the Kafka clients, binds both
/// listeners and starts serving. Kafka need not be reachable yet: readiness
/// reports it, and topics are created as soon as it answers.
pub async fn start(config: Config) -> Result<RunningBridge, StartError> {
    config.validate()?;
    let dead_letter = config
        .dead_letter
        .enabled
        .then_some(config.dead_letter.topic.as_str());
    let router =
        Router::with_dead_letter(&config.routes, dead_letter).map_err(StartError::Routes)?;
    let access = access::Access::new(&config.access).map_err(StartError::Trust)?;
    let metrics = Arc::new(Metrics::new(router.routes()));
    let auth = Arc::new(
        auth::Auth::new(config.auth.clone())
            .map_err(StartError::Trust)?
            .counting_reload_failures(metrics.auth_reload_failures.clone()),
    );
    let tls = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(c), Some(k)) => Some(Arc::new(
            tls::Tls::new(c, k).map_err(|e| StartError::Trust(format!("tls: {e}")))?,
        )),
        _ => None,
    };
    let kafka_error =
        |e: rdkafka::error::KafkaError| StartError::Kafka(config.kafka.describe_client_error(&e));
    let kafka_events = Arc::new(publish::ClientEvents::default());
    let producer = publish::create_producer(&config, metrics.clone(), kafka_events.clone())
        .map_err(kafka_error)?;
    let topics = Arc::new(
        Topics::new(
            router.routes(),
            &config,
            producer.clone(),
            kafka_events.clone(),
        )
        .map_err(kafka_error)?,
    );
    let ledger_state = config
        .dedup
        .enabled
        .then(|| Arc::new(ledger::LedgerState::default()));
    let health = Arc::new(Health::new(ledger_state.clone(), kafka_events.clone()));
    let dedup = Arc::new(dedup::Dedup::new(
        config.dedup.enabled,
        config.dedup.window,
        config.dedup.max_entries,
        metrics.clone(),
    ));
    let (stop_webhook, webhook_rx) = watch::channel(false);
    let (stop_admin, admin_rx) = watch::channel(false);
    let (ledger, ledger_task) = if config.dedup.enabled {
        let (l, task) = ledger::Ledger::start(
            &config.dedup.ledger_topic,
            producer.clone(),
            metrics.clone(),
        );
        (Some(Arc::new(l)), Some(task))
    } else {
        (None, None)
    };

    let bind = |what, addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { what, addr, source })
    };
    let webhook_listener = bind("server.listen", config.server.listen).await?;
    let admin_listener = bind("server.admin_listen", config.server.admin_listen).await?;
    let local = |l: &TcpListener, what, addr| {
        l.local_addr()
            .map_err(|source| StartError::Bind { what, addr, source })
    };
    let webhook_addr = local(&webhook_listener, "server.listen", config.server.listen)?;
    let admin_addr = local(
        &admin_listener,
        "server.admin_listen",
        config.server.admin_listen,
    )?;

    let app = Arc::new(webhook::App {
        server: config.server.clone(),
        access,
        auth: auth.clone(),
        capacity: tokio::sync::Semaphore::new(config.limits.max_inflight),
        router,
        topics: topics.clone(),
        publisher: Publisher::new(producer, config.cloudevents.clone(), metrics.clone()),
        dedup: dedup.clone(),
        ledger,
        metrics: metrics.clone(),
        health: health.clone(),
    });
    let admin = Arc::new(admin::Admin {
        metrics: metrics.clone(),
        health: health.clone(),
    });

    let follower_task = ledger_state.map(|state| {
        tokio::spawn(
            ledger::Follower {
                kafka: config.kafka.clone(),
                dedup_cfg: config.dedup.clone(),
                topics: topics.clone(),
                dedup,
                state,
                metrics: metrics.clone(),
            }
            .run(admin_rx.clone()),
        )
    });
    let health_task = tokio::spawn(health.clone().run(
        topics,
        metrics.clone(),
        config.kafka.health_interval,
        admin_rx.clone(),
    ));
    // Credential and certificate files are re-read when they change.
    if auth.has_files() || tls.is_some() {
        let (auth, tls, every, mut stop) = (
            auth.clone(),
            tls.clone(),
            config.limits.reload_interval,
            admin_rx.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
                auth.reload_if_changed();
                if let Some(t) = &tls {
                    t.reload_if_changed();
                }
            }
        });
    }
    let limits = server::Limits {
        max_connections: config.limits.max_connections,
        max_headers: config.limits.max_headers,
        max_header_bytes: config.limits.max_header_bytes,
        header_read_timeout: config.limits.header_read_timeout,
    };
    let drain = config.server.shutdown_timeout;
    let accept_gate = Some(Arc::new(app.access.clone()));
    let webhook_app = app.clone();
    let webhook_task = tokio::spawn(server::serve(
        "webhook",
        webhook_listener,
        move |peer, req| webhook::handle(webhook_app.clone(), peer, req),
        limits,
        tls.clone(),
        accept_gate,
        Some(metrics.clone()),
        webhook_rx,
        drain,
    ));
    let admin_task = tokio::spawn(server::serve(
        "admin",
        admin_listener,
        move |_peer, req| admin::handle(admin.clone(), req),
        ADMIN_LIMITS,
        None,
        None,
        None,
        admin_rx,
        Duration::from_secs(1),
    ));
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(
        webhook = %format!("{scheme}://{webhook_addr}{}", config.server.webhook_path),
        admin = %format!("http://{admin_addr}"),
        brokers = %config.kafka.brokers,
        "popbill-bridge listening"
    );
    Ok(RunningBridge {
        webhook_addr,
        admin_addr,
        health,
        app,
        kafka_events,
        stop_webhook,
        stop_admin,
        webhook_task,
        admin_task,
        health_task,
        follower_task,
        ledger_task,
        shutdown_delay: config.server.shutdown_delay,
        shutdown_timeout: config.server.shutdown_timeout,
    })
}

impl RunningBridge {
    /// Resolves, with librdkafka's reason, when a Kafka client hit a fatal
    /// error (e.g. the idempotent producer lost its sequence, or may not
    /// write): nothing will be published again, so the owner must shut the
    /// bridge down and exit non-zero to be restarted with a new producer.
    pub async fn fatal_error(&self) -> String {
        self.kafka_events.wait_fatal().await
    }

    /// The orderly stop: fail readiness at once, keep serving for the
    /// propagation delay (load balancers need it to stop sending), stop
    /// accepting, let in-flight deliveries get their real answer, then flush
    /// the producer. Nothing acknowledged is left behind: an `OK` was only
    /// ever sent after Kafka confirmed.
    pub async fn shutdown(self) -> ShutdownReport {
        self.health.set_shutting_down();
        info!(delay = ?self.shutdown_delay, "shutting down: readiness fails, still serving during the delay");
        tokio::time::sleep(self.shutdown_delay).await;
        let _ = self.stop_webhook.send(true);
        let closed = tokio::time::Instant::now();
        // Bounded by shutdown_timeout inside serve().
        let drained = self.webhook_task.await.unwrap_or(false);
        // Background loops may sit in a blocking Kafka call; nothing they
        // do matters any more.
        self.health_task.abort();
        if let Some(t) = self.follower_task {
            t.abort();
        }
        let _ = self.stop_admin.send(true);
        let _ = self.admin_task.await;
        // Events confirmed from here on (requests abandoned or timed out,
        // their records still in flight) must reach the ledger too: wait
        // for every outstanding delivery report first, then let the writer
        // hand over its last batch, then flush.
        if let (Some(ledger), Some(t)) = (&self.app.ledger, self.ledger_task) {
            let left = self.shutdown_timeout.saturating_sub(closed.elapsed());
            let outstanding = ledger.settled(left).await;
            if outstanding > 0 {
                warn!(
                    outstanding,
                    "delivery reports still awaited at shutdown; those events get no ledger entry (a later copy may be published again)"
                );
            }
            ledger.close();
            let left = self.shutdown_timeout.saturating_sub(closed.elapsed());
            let _ = tokio::time::timeout(left, t).await;
        }
        let producer = self.app.publisher.producer().clone();
        // What is left of the budget: delivery reports of answered requests
        // already arrived, so this only waits for ledger records and for
        // writes whose requests were abandoned.
        let budget = self
            .shutdown_timeout
            .saturating_sub(closed.elapsed())
            .max(Duration::from_millis(100));
        let unflushed = tokio::task::spawn_blocking(move || {
            let _ = producer.flush(budget);
            producer.in_flight_count()
        })
        .await
        .unwrap_or(-1);
        if unflushed != 0 {
            warn!(
                unflushed,
                "records still unconfirmed by Kafka at exit (none of them was acknowledged; their senders retry)"
            );
        }
        info!(drained, unflushed, "popbill-bridge stopped");
        ShutdownReport { drained, unflushed }
    }
}
