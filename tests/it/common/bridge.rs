//! The bridge under test: configurations, a bridge started in-process on a
//! real broker or on librdkafka's mock cluster, and the binary as a
//! separate process.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use popbill_bridge::RunningBridge;
use popbill_bridge::config::Config;

use super::http::get;

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A loopback port nothing listens on (an unreachable broker, a refused
/// connection).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A configuration for one test: loopback listeners on free ports, topics
/// of its own under `prefix`, single-replica topics for the test broker.
pub fn test_config(brokers: &str, prefix: &str) -> Config {
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".parse().expect("addr");
    c.server.admin_listen = "127.0.0.1:0".parse().expect("addr");
    c.server.shutdown_delay = Duration::ZERO;
    c.server.shutdown_timeout = Duration::from_secs(5);
    c.kafka.brokers = brokers.to_string();
    c.kafka.health_interval = Duration::from_millis(500);
    c.kafka.statistics_interval = Duration::from_secs(1);
    c.topics.partitions = 3;
    c.topics.replication_factor = 1;
    c.topics.settings.clear();
    c.routes.template = format!("{prefix}.{{type}}.{{event}}");
    c.routes.fallback = format!("{prefix}.unrouted");
    c.dead_letter.topic = format!("{prefix}.deadletter");
    c.dedup.ledger_topic = format!("{prefix}.ledger");
    c.dedup.ledger_partitions = 2;
    c
}

pub async fn start(cfg: Config) -> RunningBridge {
    popbill_bridge::start(cfg).await.expect("bridge starts")
}

/// Where a bridge listens, in-process or a separate process.
pub trait Listeners {
    fn webhook(&self) -> SocketAddr;
    fn admin(&self) -> SocketAddr;
}

impl Listeners for RunningBridge {
    fn webhook(&self) -> SocketAddr {
        self.webhook_addr
    }
    fn admin(&self) -> SocketAddr {
        self.admin_addr
    }
}

impl Listeners for BridgeProcess {
    fn webhook(&self) -> SocketAddr {
        self.webhook
    }
    fn admin(&self) -> SocketAddr {
        self.admin
    }
}

/// Asks `/readyz` on `admin` every 100 ms until `done(status, body)`, at
/// most `within`, and gives the body; a port not listening yet (a process
/// still starting) counts as not done. `what` names the wait when it fails.
pub async fn poll_readyz(
    admin: SocketAddr,
    within: Duration,
    what: &str,
    done: impl Fn(StatusCode, &str) -> bool,
) -> String {
    let until = Instant::now() + within;
    loop {
        let last = match tokio::net::TcpStream::connect(admin).await {
            Ok(_) => {
                let (status, body) = get(admin, "/readyz").await;
                if done(status, &body) {
                    return body;
                }
                format!("{status} {body}")
            }
            Err(e) => format!("not listening: {e}"),
        };
        assert!(Instant::now() < until, "{what} in {within:?}: {last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_ready(bridge: &impl Listeners, within: Duration) {
    poll_readyz(bridge.admin(), within, "bridge not ready", |s, _| {
        s == StatusCode::OK
    })
    .await;
}

/// Waits until `/readyz` answers 503 with a body containing `needle`.
pub async fn wait_unready_with(bridge: &impl Listeners, needle: &str, within: Duration) -> String {
    let what = format!("readiness never named {needle:?}");
    poll_readyz(bridge.admin(), within, &what, |s, body| {
        s == StatusCode::SERVICE_UNAVAILABLE && body.contains(needle)
    })
    .await
}

/// The event type [`MockKafka::config`] narrows the routes to: the one of
/// `issue_headers`. Every other delivery goes to the fallback topic.
pub const MOCK_ROUTE: &str = "TAXINVOICE.STATE:Issue";

/// Kafka in this process: librdkafka's mock cluster (one broker, nothing
/// durable, no JVM), with its fault injection at hand through `cluster`.
/// It cannot create topics through the admin API, so [`MockKafka::start`]
/// creates every topic the configuration names before the bridge starts.
pub struct MockKafka {
    pub cluster: MockCluster<'static, DefaultProducerContext>,
    created: Mutex<BTreeSet<String>>,
}

impl MockKafka {
    pub fn new() -> MockKafka {
        MockKafka {
            cluster: MockCluster::new(1).expect("mock cluster"),
            created: Mutex::default(),
        }
    }

    pub fn brokers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// `test_config` on this cluster, with one known route ([`MOCK_ROUTE`])
    /// so that few topics need creating.
    pub fn config(&self, prefix: &str) -> Config {
        let mut cfg = test_config(&self.brokers(), prefix);
        cfg.routes.known = vec![MOCK_ROUTE.into()];
        cfg
    }

    /// Creates `topic` unless this cluster has it already.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let mut created = self.created.lock().expect("lock");
        if created.insert(topic.to_string()) {
            popbill_bridge::kafka::mock::create_topic(&self.cluster, topic, partitions)
                .unwrap_or_else(|e| panic!("mock topic {topic}: {e}"));
        }
    }

    /// Creates every topic `cfg` makes the bridge use, as the bridge
    /// lists them ([`Config::topics_in_use`]).
    pub fn create_topics(&self, cfg: &Config) {
        for (topic, partitions) in cfg.topics_in_use() {
            self.create_topic(&topic, partitions);
        }
    }

    /// Creates the topics of `cfg` and starts a bridge on this cluster
    /// (`cfg` must come from [`MockKafka::config`]).
    pub async fn start(&self, cfg: Config) -> RunningBridge {
        assert_eq!(
            cfg.kafka.brokers,
            self.brokers(),
            "a config of this cluster"
        );
        self.create_topics(&cfg);
        start(cfg).await
    }

    /// As `start`, and waits until the bridge is ready.
    pub async fn start_ready(&self, cfg: Config) -> RunningBridge {
        let bridge = self.start(cfg).await;
        wait_ready(&bridge, Duration::from_secs(30)).await;
        bridge
    }
}

/// The bridge binary in a clean environment: no `POPBILL_*` setting (nor
/// `RUST_LOG`) of the developer's leaks in.
pub fn bridge_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_popbill-bridge"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POPBILL_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

/// [`bridge_command`] on `brokers` with the topics, ledger and timings of
/// `test_config(brokers, prefix)` (listeners not set).
pub fn configured_command(brokers: &str, prefix: &str) -> Command {
    let mut c = bridge_command();
    c.args(["--brokers", brokers]);
    with_test_settings(&mut c, prefix);
    c
}

/// The settings of `test_config(_, prefix)` as environment variables of
/// `c` (the brokers and listeners excepted).
pub fn with_test_settings(c: &mut Command, prefix: &str) {
    c.env("POPBILL_BRIDGE_TOPICS__PARTITIONS", "3")
        .env("POPBILL_BRIDGE_TOPICS__REPLICATION_FACTOR", "1")
        .env("POPBILL_BRIDGE_TOPICS__SETTINGS__MIN_INSYNC_REPLICAS", "1")
        .env(
            "POPBILL_BRIDGE_ROUTES__TEMPLATE",
            format!("{prefix}.{{type}}.{{event}}"),
        )
        .env(
            "POPBILL_BRIDGE_ROUTES__FALLBACK",
            format!("{prefix}.unrouted"),
        )
        .env(
            "POPBILL_BRIDGE_DEAD_LETTER__TOPIC",
            format!("{prefix}.deadletter"),
        )
        .env(
            "POPBILL_BRIDGE_DEDUP__LEDGER_TOPIC",
            format!("{prefix}.ledger"),
        )
        .env("POPBILL_BRIDGE_DEDUP__LEDGER_PARTITIONS", "2")
        .env("POPBILL_BRIDGE_KAFKA__HEALTH_INTERVAL", "500ms")
        .env("POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY", "0s");
}

/// The bridge binary as a separate process, for tests that kill it.
pub struct BridgeProcess {
    pub child: std::process::Child,
    pub webhook: SocketAddr,
    pub admin: SocketAddr,
}

impl BridgeProcess {
    /// Starts the binary against `brokers` with the same topics and ledger
    /// as `test_config(brokers, prefix)`, and waits until it is ready.
    pub async fn start(brokers: &str, prefix: &str) -> BridgeProcess {
        Self::start_with(brokers, prefix, &[]).await
    }

    /// As `start`, with extra `POPBILL_BRIDGE_*` settings.
    pub async fn start_with(brokers: &str, prefix: &str, env: &[(&str, &str)]) -> BridgeProcess {
        let p = Self::spawn_logging_to(brokers, prefix, env, std::process::Stdio::null());
        wait_ready(&p, Duration::from_secs(30)).await;
        p
    }

    /// As `start_with`, not waiting for readiness (for a test of a bridge
    /// that does not become ready), its log (stdout) going to `log` (for a
    /// test that reads what it said).
    pub fn spawn_logging_to(
        brokers: &str,
        prefix: &str,
        env: &[(&str, &str)],
        log: std::process::Stdio,
    ) -> BridgeProcess {
        let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let webhook = a.local_addr().expect("addr");
        let admin = b.local_addr().expect("addr");
        drop((a, b));
        let child = configured_command(brokers, prefix)
            .args([
                "--listen",
                &webhook.to_string(),
                "--admin-listen",
                &admin.to_string(),
            ])
            .env("POPBILL_BRIDGE_LOG__LEVEL", "warn")
            .envs(env.iter().copied())
            .stdout(log)
            .spawn()
            .expect("spawn bridge");
        BridgeProcess {
            child,
            webhook,
            admin,
        }
    }

    /// Waits for the process to exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
