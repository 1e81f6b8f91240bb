//! Building and running a bridge, in two steps:
//!
//! 1. [`Parts::build`] — synchronous: every configuration section is
//!    checked by the part that owns it, as that part is built, and every
//!    problem is reported at once before anything runs. `--check-config`
//!    stops here (and builds the Kafka client configuration offline).
//! 2. [`start`] — the Kafka clients, the two listeners, and the tasks that
//!    run them; returns a [`RunningBridge`] to stop in order.
//!
//! No part is built twice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use crate::config::{Config, ConfigError};
use crate::dedup::ledger;
use crate::health::Health;
use crate::http::access::Access;
use crate::http::auth::Auth;
use crate::http::server::{self, Limits, Listener};
use crate::http::tls::Tls;
use crate::http::{admin, reload};
use crate::kafka::certificate_check::CertificateCheck;
use crate::kafka::client::ClientEvents;
use crate::route::Router;
use crate::shutdown::{Shutdown, ShutdownReport};
use crate::telemetry::metrics::Metrics;
use crate::webhook;

/// Why the bridge could not start. Each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
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

mod clients;

pub use clients::{KafkaClients, follow_ledger};

/// The admin port's limits: few, local clients (probes, Prometheus).
const ADMIN_LIMITS: Limits = Limits {
    max_connections: 64,
    max_headers: 64,
    max_header_bytes: 16 * 1024,
    header_read_timeout: Duration::from_secs(10),
};

/// Every part that needs no network, each built (and its section checked)
/// exactly once.
pub(crate) struct Parts {
    pub router: Router,
    pub access: Access,
    pub auth: Auth,
    pub tls: Option<Tls>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

impl Parts {
    /// Checks every section and builds every part; every problem of every
    /// section is reported at once.
    pub fn build(config: &Config) -> Result<Parts, StartError> {
        let mut errs = Vec::new();
        errs.extend(config.server.check());
        errs.extend(config.kafka.check());
        errs.extend(config.topics.check());
        errs.extend(config.dedup.check());
        let router = take(Router::new(&config.routes, &config.dead_letter), &mut errs);
        if let Some(router) = &router {
            errs.extend(config.dedup.check_topic(router));
        }
        let access = take(Access::new(&config.access), &mut errs);
        let auth = take(Auth::new(config.auth.clone()), &mut errs);
        let tls = take(config.tls.build(), &mut errs);
        let limits = take(config.limits.limits(), &mut errs);
        errs.extend(config.check_across());
        match (router, access, auth, tls, limits) {
            (Some(router), Some(access), Some(auth), Some(tls), Some(limits))
                if errs.is_empty() =>
            {
                let metrics = Arc::new(Metrics::new(router.routes()));
                let auth = auth.counting_reload_failures(metrics.auth_reload_failures());
                Ok(Parts {
                    router,
                    access,
                    auth,
                    tls,
                    limits,
                    metrics,
                })
            }
            _ => Err(ConfigError::Invalid(errs).into()),
        }
    }
}

/// A part, or its problems added to `errs`.
fn take<T>(built: Result<T, Vec<String>>, errs: &mut Vec<String>) -> Option<T> {
    built.map_err(|e| errs.extend(e)).ok()
}

/// `--check-config`: everything [`start`] checks before it touches the
/// network, and the Kafka producer's configuration built by librdkafka
/// without connecting (a mistyped property fails here).
pub fn check(config: &Config) -> Result<(), StartError> {
    Parts::build(config)?;
    config
        .kafka
        .check_client(config.max_record_bytes())
        .map_err(|e| ConfigError::Invalid(vec![e]).into())
}

/// A started bridge: its bound addresses and the handle to stop it.
pub struct RunningBridge {
    pub webhook_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Kafka clients' shared events: the fatal error that ends the bridge.
    kafka_events: Arc<ClientEvents>,
    shutdown: Shutdown,
}

/// Builds every part, creates the Kafka clients, binds both listeners and
/// starts serving. Kafka need not be reachable yet: readiness reports it,
/// and topics are created as soon as it answers.
pub async fn start(config: Config) -> Result<RunningBridge, StartError> {
    let Parts {
        router,
        access,
        auth,
        tls,
        limits,
        metrics,
    } = Parts::build(&config)?;
    let webhook_listener = bind("server.listen", config.server.listen).await?;
    let admin_listener = bind("server.admin_listen", config.server.admin_listen).await?;
    let webhook_addr = local_addr(&webhook_listener, "server.listen", config.server.listen)?;
    let admin_addr = local_addr(
        &admin_listener,
        "server.admin_listen",
        config.server.admin_listen,
    )?;

    // The writers' default name holds the webhook's bound port: unique on
    // this host among running bridges, the same after a restart on a
    // fixed port.
    let KafkaClients {
        events: kafka_events,
        producer,
        publisher,
        topics,
        dedup,
        transactions,
    } = KafkaClients::build(
        &config,
        &router,
        &metrics,
        &config
            .kafka
            .transactions
            .id_prefix(&config.kafka.client_id, webhook_addr.port()),
    )?;
    let ledger_state = config
        .dedup
        .enabled
        .then(|| Arc::new(ledger::LedgerState::default()));
    let health = Arc::new(
        Health::new(ledger_state.clone(), kafka_events.clone())
            .with_transactions(transactions.clone())
            .with_certificate_check(CertificateCheck::of(&config.kafka)),
    );

    let (intake, intake_signal) = crate::signal::signal();
    let (background, background_signal) = crate::signal::signal();
    let auth = Arc::new(auth);
    let tls = tls.map(Arc::new);
    let access = Arc::new(access);
    let app = Arc::new(webhook::App::new(
        &config,
        webhook::AppParts {
            access: access.clone(),
            auth: auth.clone(),
            router,
            topics: topics.clone(),
            publisher,
            dedup: dedup.clone(),
            metrics: metrics.clone(),
        },
    ));
    let admin = Arc::new(admin::Admin {
        metrics: metrics.clone(),
        health: health.clone(),
    });

    let mut loops: Vec<JoinHandle<()>> = Vec::new();
    if let Some(state) = ledger_state {
        loops.push(follow_ledger(
            &config,
            &topics,
            &dedup,
            state,
            &metrics,
            background_signal.clone(),
        ));
    }
    loops.push(tokio::spawn(health.clone().run(
        topics,
        metrics.clone(),
        config.kafka.health_interval,
        background_signal.clone(),
    )));
    crate::kafka::secret_files::spawn_watch(
        &config.kafka,
        config.limits.reload_interval,
        kafka_events.clone(),
        background_signal.clone(),
    );
    reload::spawn(
        auth,
        tls.clone(),
        config.limits.reload_interval,
        background_signal.clone(),
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    let webhook_task = tokio::spawn(server::serve(
        webhook_listener,
        Listener {
            name: "webhook",
            limits,
            tls,
            access: Some(access),
            metrics: Some(metrics.clone()),
            drain: config.server.shutdown_timeout,
        },
        move |peer, req| webhook::handle(app.clone(), peer, req),
        intake_signal,
    ));
    let admin_task = tokio::spawn(server::serve(
        admin_listener,
        Listener {
            name: "admin",
            limits: ADMIN_LIMITS,
            tls: None,
            access: None,
            metrics: None,
            drain: Duration::from_secs(1),
        },
        move |_peer, req| admin::handle(admin.clone(), req),
        background_signal,
    ));
    info!(
        webhook = %format!("{scheme}://{webhook_addr}{}", config.server.webhook_path),
        admin = %format!("http://{admin_addr}"),
        brokers = %config.kafka.brokers,
        "popbill-bridge listening"
    );
    Ok(RunningBridge {
        webhook_addr,
        admin_addr,
        kafka_events,
        shutdown: Shutdown {
            health,
            dedup,
            producer,
            transactions,
            intake,
            webhook: webhook_task,
            background,
            admin: admin_task,
            loops,
            delay: config.server.shutdown_delay,
            budget: config.server.shutdown_timeout,
        },
    })
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

fn local_addr(
    l: &TcpListener,
    what: &'static str,
    addr: SocketAddr,
) -> Result<SocketAddr, StartError> {
    l.local_addr()
        .map_err(|source| StartError::Bind { what, addr, source })
}

impl RunningBridge {
    /// Resolves, with librdkafka's reason, when a Kafka client hit a fatal
    /// error (e.g. the idempotent producer lost its sequence, or may not
    /// write): nothing will be published again, so the owner must shut the
    /// bridge down and exit non-zero to be restarted with a new producer.
    pub async fn fatal_error(&self) -> String {
        self.kafka_events.wait_fatal().await
    }

    /// Resolves, with the reason, when the bridge must be started again
    /// to take a changed Kafka secret (see `kafka::secret_files`): the
    /// owner stops it in order and exits with status 4.
    pub async fn restart_requested(&self) -> String {
        self.kafka_events.wait_restart().await
    }

    /// The orderly stop, phase by phase (see [`crate::shutdown`]). Nothing
    /// acknowledged is left behind: an `OK` was only ever sent after Kafka
    /// confirmed.
    pub async fn shutdown(self) -> ShutdownReport {
        self.shutdown.run().await
    }
}

#[cfg(test)]
mod tests;
