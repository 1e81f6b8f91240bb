//! The bridge against a secured Kafka (issue #22): the broker of
//! `scripts/kafka.sh secured` (TLS with a private CA, SASL/SCRAM-SHA-512,
//! mutual TLS, the StandardAuthorizer denying whatever no ACL allows).
//! With a wrong password, or a broker certificate it cannot verify, the
//! bridge stays up, not ready, and `/readyz` names the refusal; without one
//! of the rights docs/deploy.md lists, `/readyz`, the log and the answer
//! name the right. Here too the broker, the ACL grants and the settings
//! the end-to-end flow of [`crate::least_privilege`] uses.
//!
//! The secured broker is found running (then left running), or started by
//! the script when `POPBILL_TEST_KAFKA_SCRIPT=1` says the tests may use it
//! (then stopped once the last test using it ends). Without either the
//! test fails, saying how to give it one: it never passes without having
//! run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Mutex;

use crate::common::*;

const MARK_WHY: &str = "the secured broker of scripts/kafka.sh secured";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh")
}

/// `scripts/kafka.sh secured ARGS`: its stdout, or a panic with its stderr.
fn secured_sh(args: &[&str]) -> String {
    let out = Command::new(script())
        .arg("secured")
        .args(args)
        .output()
        .expect("run scripts/kafka.sh secured");
    assert!(
        out.status.success(),
        "scripts/kafka.sh secured {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// How many tests use the secured broker now, and whether this process
/// started it (then the last one to end stops it).
struct Users {
    count: usize,
    started_here: bool,
}

static USERS: std::sync::Mutex<Users> = std::sync::Mutex::new(Users {
    count: 0,
    started_here: false,
});

/// The cluster-wide ACL (DescribeConfigs on the Cluster) is one for every
/// test granting it: the least-privilege tests run one at a time, so that
/// one's revoking it never takes it from the other.
pub(crate) static CLUSTER_ACL: Mutex<()> = Mutex::const_new(());

/// The secured broker as one test holds it.
pub(crate) struct Secured {
    /// Its directory: CA, client certificate, password files.
    dir: PathBuf,
}

impl Secured {
    pub(crate) async fn get() -> Secured {
        // Found or started under the lock: two tests never start it twice,
        // and none finds it "running" just before the last user stops it.
        tokio::task::spawn_blocking(|| {
            let mut users = USERS.lock().unwrap_or_else(|p| p.into_inner());
            if users.count == 0 {
                let running = Command::new(script())
                    .args(["secured", "status"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if !running {
                    assert!(
                        std::env::var("POPBILL_TEST_KAFKA_SCRIPT").as_deref() == Ok("1"),
                        "this test needs {MARK_WHY}: start it (scripts/kafka.sh secured start), \
                         or set POPBILL_TEST_KAFKA_SCRIPT=1 to let the test start it"
                    );
                    secured_sh(&["start"]);
                    users.started_here = true;
                }
            }
            users.count += 1;
        })
        .await
        .expect("finding or starting the secured broker");
        Secured {
            dir: PathBuf::from(secured_sh(&["dir"])),
        }
    }

    pub(crate) fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    pub(crate) fn password(&self, user: &str) -> String {
        let path = self.dir.join(format!("{user}.password"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// The admin's client settings (SASL_SSL, SCRAM-SHA-512, the CA).
    pub(crate) fn admin_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", SASL_BOOTSTRAP)
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", "SCRAM-SHA-512")
            .set("sasl.username", "admin")
            .set("sasl.password", self.password("admin"))
            .set("ssl.ca.location", self.file("ca.pem"));
        c
    }
}

impl Drop for Secured {
    fn drop(&mut self) {
        let mut users = USERS.lock().unwrap_or_else(|p| p.into_inner());
        users.count = users.count.saturating_sub(1);
        if users.count == 0 && users.started_here {
            users.started_here = false;
            let _ = Command::new(script()).args(["secured", "stop"]).status();
        }
    }
}

/// The listeners of `scripts/kafka.sh secured`.
pub(crate) const SASL_BOOTSTRAP: &str = "127.0.0.1:19192";
pub(crate) const MTLS_BOOTSTRAP: &str = "127.0.0.1:19193";
/// Its listener whose certificate expired (signed by the same CA).
const EXPIRED_BOOTSTRAP: &str = "127.0.0.1:19196";

/// The principal of both the SCRAM user `bridge` and the client
/// certificate (CN=bridge).
const PRINCIPAL: &str = "User:bridge";

/// The least-privilege ACLs of docs/deploy.md for a bridge whose topics
/// start with `<prefix>.`, whose `kafka.client_id` is `prefix` (its groups
/// `<prefix>-ledger`, `<prefix>-settle` and redrive's
/// `<prefix>-redrive-<topic>`) and whose transactional ids start with
/// `prefix`: granted while the value lives, revoked at drop. Not granted,
/// so proven unneeded: IdempotentWrite on the Cluster (Kafka 2.8 and
/// later, KIP-679), Read on the ledger's and the read-back's groups.
pub(crate) struct LeastPrivilege {
    grants: Vec<Vec<String>>,
}

/// A right of the least-privilege set a test leaves out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LeaveOut {
    Nothing,
    /// `Read` on the topics (the ledger among them).
    TopicRead,
    /// `Write` on the topics but the ledger (`<prefix>.ledger`).
    RoutedTopicWrite,
    /// `DescribeConfigs` on the topics and on the Cluster.
    DescribeConfigs,
    /// `Create` on the topic prefix.
    TopicCreate,
    /// `Describe` on the topic prefix (`Write` and `Read` imply it).
    TopicDescribe,
    /// `Write` and `Describe` on the TransactionalId prefix.
    TransactionalId,
    /// `Describe` on the ledger follower's group `<prefix>-ledger`.
    LedgerGroupDescribe,
    /// `Read` on redrive's groups `<prefix>-redrive-…`.
    RedriveGroupRead,
}

impl LeastPrivilege {
    pub(crate) fn grant(prefix: &str) -> LeastPrivilege {
        LeastPrivilege::grant_but(prefix, LeaveOut::Nothing)
    }

    pub(crate) fn grant_but(prefix: &str, leave_out: LeaveOut) -> LeastPrivilege {
        let ops = |ops: &[&str]| -> Vec<String> {
            ops.iter()
                .flat_map(|o| ["--operation".to_string(), o.to_string()])
                .collect()
        };
        let prefixed = |kind: &str, name: String| -> Vec<String> {
            vec![
                kind.to_string(),
                name,
                "--resource-pattern-type".to_string(),
                "prefixed".to_string(),
            ]
        };
        let topic_ops: Vec<&str> = ["Write", "Describe", "Create", "Read", "DescribeConfigs"]
            .into_iter()
            .filter(|op| match leave_out {
                LeaveOut::TopicRead => *op != "Read",
                LeaveOut::RoutedTopicWrite => *op != "Write",
                LeaveOut::DescribeConfigs => *op != "DescribeConfigs",
                LeaveOut::TopicCreate => *op != "Create",
                LeaveOut::TopicDescribe => *op != "Describe",
                _ => true,
            })
            .collect();
        // Both readers assign their partitions and commit nothing:
        // Describe (FindCoordinator) is all their groups need.
        let mut groups = vec!["--group".to_string(), format!("{prefix}-settle")];
        if leave_out != LeaveOut::LedgerGroupDescribe {
            groups.extend(["--group".to_string(), format!("{prefix}-ledger")]);
        }
        let mut grants: Vec<Vec<String>> = vec![
            [ops(&topic_ops), prefixed("--topic", format!("{prefix}."))].concat(),
            [ops(&["Describe"]), groups].concat(),
        ];
        if leave_out != LeaveOut::TransactionalId {
            grants.push(
                [
                    ops(&["Write", "Describe"]),
                    prefixed("--transactional-id", prefix.to_string()),
                ]
                .concat(),
            );
        }
        if leave_out != LeaveOut::DescribeConfigs {
            grants.push([ops(&["DescribeConfigs"]), vec!["--cluster".to_string()]].concat());
        }
        if leave_out != LeaveOut::RedriveGroupRead {
            grants.push(
                [
                    ops(&["Read"]),
                    prefixed("--group", format!("{prefix}-redrive-")),
                ]
                .concat(),
            );
        }
        if leave_out == LeaveOut::RoutedTopicWrite {
            grants.push(
                [
                    ops(&["Write"]),
                    vec!["--topic".to_string(), format!("{prefix}.ledger")],
                ]
                .concat(),
            );
        }
        // One JVM per grant: run them side by side.
        std::thread::scope(|s| {
            for g in &grants {
                s.spawn(move || {
                    let mut args = vec!["acls", "--add", "--allow-principal", PRINCIPAL];
                    args.extend(g.iter().map(String::as_str));
                    secured_sh(&args);
                });
            }
        });
        LeastPrivilege { grants }
    }
}

impl Drop for LeastPrivilege {
    fn drop(&mut self) {
        std::thread::scope(|s| {
            for g in &self.grants {
                s.spawn(move || {
                    let mut c = Command::new(script());
                    c.args([
                        "secured",
                        "acls",
                        "--remove",
                        "--force",
                        "--allow-principal",
                        PRINCIPAL,
                    ])
                    .args(g);
                    let _ = c.output();
                });
            }
        });
    }
}

/// A bridge over SASL_SSL whose principal holds the least-privilege ACLs
/// but `leave_out`, not waited for. Dropped in field order: the bridge is
/// killed before its ACLs are revoked and the cluster-wide grant is let go.
pub(crate) struct Unprivileged {
    pub(crate) bridge: BridgeProcess,
    pub(crate) log: LogFile,
    pub(crate) prefix: String,
    pub(crate) _acls: LeastPrivilege,
    pub(crate) _cluster: tokio::sync::MutexGuard<'static, ()>,
}

impl Unprivileged {
    pub(crate) async fn start(s: &Secured, name: &str, leave_out: LeaveOut) -> Unprivileged {
        let cluster = CLUSTER_ACL.lock().await;
        let prefix = unique(name);
        let p = prefix.clone();
        let acls = tokio::task::spawn_blocking(move || LeastPrivilege::grant_but(&p, leave_out))
            .await
            .expect("granting ACLs");
        let log = LogFile::new(&prefix);
        let env = sasl_env(s, None);
        let bridge = spawn_bridge(SASL_BOOTSTRAP, &prefix, &bridge_env(&prefix, &env), &log.0);
        Unprivileged {
            bridge,
            log,
            prefix,
            _acls: acls,
            _cluster: cluster,
        }
    }
}

/// The bridge's environment for the secured broker, as an operator gives
/// it: librdkafka properties through `kafka.properties`, the topics and
/// transactional ids under `prefix`, `kafka.client_id` = `prefix`.
pub(crate) fn bridge_env(prefix: &str, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "POPBILL_BRIDGE_KAFKA__CLIENT_ID".to_string(),
            prefix.to_string(),
        ),
        (
            "POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ID".to_string(),
            format!("{prefix}-writer"),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// The SASL_SSL settings, the password as a file would give it (read from
/// the secured broker's password file; `password` overrides it).
pub(crate) fn sasl_env(s: &Secured, password: Option<&str>) -> Vec<(&'static str, String)> {
    vec![
        (
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SECURITY_PROTOCOL",
            "SASL_SSL".to_string(),
        ),
        (
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SASL_MECHANISMS",
            "SCRAM-SHA-512".to_string(),
        ),
        (
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SASL_USERNAME",
            "bridge".to_string(),
        ),
        (
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SASL_PASSWORD",
            password.map_or_else(|| s.password("bridge"), str::to_string),
        ),
        (
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SSL_CA_LOCATION",
            s.file("ca.pem"),
        ),
    ]
}

/// The mutual-TLS settings: the client certificate and key, the CA.
pub(crate) fn mtls_env(s: &Secured) -> Vec<(&'static str, String)> {
    vec![
        (
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SECURITY_PROTOCOL",
            "SSL".to_string(),
        ),
        (
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SSL_CA_LOCATION",
            s.file("ca.pem"),
        ),
        (
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SSL_CERTIFICATE_LOCATION",
            s.file("client.pem"),
        ),
        (
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SSL_KEY_LOCATION",
            s.file("client.key"),
        ),
    ]
}

/// The bridge binary on `brokers` with `env`, not waited for, its log
/// (warnings and errors) going to the file `log`.
pub(crate) fn spawn_bridge(
    brokers: &str,
    prefix: &str,
    env: &[(String, String)],
    log: &Path,
) -> BridgeProcess {
    let file = std::fs::File::create(log).expect("the bridge's log file");
    BridgeProcess::spawn_logging_to(
        brokers,
        prefix,
        &env.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        file.into(),
    )
}

/// A file for a bridge's log, removed when dropped.
pub(crate) struct LogFile(pub(crate) PathBuf);

impl LogFile {
    pub(crate) fn new(prefix: &str) -> LogFile {
        LogFile(std::env::temp_dir().join(format!("{prefix}.log")))
    }

    pub(crate) fn text(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The records of `topic` (read_committed, from the beginning) as the
/// admin reads them, until one has `ce_id` = `id` or `within` passed.
pub(crate) fn read_as_admin(
    mut admin: ClientConfig,
    topic: &str,
    id: &str,
    within: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = admin
        .set("group.id", unique("it-secured-reader-"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("admin consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata as the admin");
    let mut tpl = TopicPartitionList::new();
    for t in md.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    assert!(tpl.count() > 0, "{topic} has no partitions");
    consumer.assign(&tpl).expect("assign");
    let mut out: Vec<OwnedMessage> = Vec::new();
    let until = Instant::now() + within;
    while Instant::now() < until {
        if out
            .iter()
            .any(|m| record_header(m, "ce_id").as_deref() == Some(id))
        {
            break;
        }
        if let Some(r) = consumer.poll(Duration::from_millis(100)) {
            out.push(r.expect("consume as the admin").detach());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn a_wrong_scram_password_keeps_the_bridge_up_and_readiness_names_the_refused_login() {
    let s = Secured::get().await;
    let prefix = unique("it-badpw-");
    let env = sasl_env(&s, Some("not-the-password"));
    let log = LogFile::new(&prefix);
    let mut bridge = spawn_bridge(SASL_BOOTSTRAP, &prefix, &bridge_env(&prefix, &env), &log.0);
    let body = wait_unready_with(
        &bridge,
        "SASL authentication error",
        Duration::from_secs(30),
    )
    .await;
    assert!(body.contains("Kafka metadata not reachable"), "{body}");
    assert!(body.contains("invalid credentials"), "{body}");
    assert!(!body.contains("not-the-password"), "{body}");
    // Not the misleading "no transaction coordinator answered".
    assert!(!body.contains("no transaction coordinator"), "{body}");
    // The log names it too, and never holds the password.
    let text = log.text();
    assert!(text.contains("SASL authentication error"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    // Up all along: it waits for a right password, it does not exit.
    assert_eq!(bridge.child.try_wait().expect("try_wait"), None);
    let (status, _) = get(bridge.admin, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    bridge.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn an_untrusted_broker_certificate_keeps_the_bridge_up_and_readiness_names_the_tls_failure() {
    let s = Secured::get().await;
    let prefix = unique("it-badca-");
    // Trusting the client's own certificate instead of the CA: the
    // broker's certificate cannot be verified.
    let mut env = mtls_env(&s);
    for (k, v) in &mut env {
        if *k == "POPBILL_BRIDGE_KAFKA__PROPERTIES__SSL_CA_LOCATION" {
            *v = s.file("client.pem");
        }
    }
    let log = LogFile::new(&prefix);
    let mut bridge = spawn_bridge(MTLS_BOOTSTRAP, &prefix, &bridge_env(&prefix, &env), &log.0);
    // The bridge's own look at the certificate names the CA, before
    // librdkafka's words.
    let body = wait_unready_with(
        &bridge,
        "is not signed by a CA in ssl.ca.location",
        Duration::from_secs(30),
    )
    .await;
    assert!(body.contains("Kafka metadata not reachable"), "{body}");
    assert!(body.contains("certificate verify failed"), "{body}");
    assert!(body.contains("SSL handshake failed"), "{body}");
    assert_eq!(bridge.child.try_wait().expect("try_wait"), None);
    bridge.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn no_client_certificate_on_the_mutual_tls_listener_keeps_the_bridge_up_and_readiness_names_the_refusal()
 {
    let s = Secured::get().await;
    let prefix = unique("it-nocert-");
    let env: Vec<(&str, String)> = mtls_env(&s)
        .into_iter()
        .filter(|(k, _)| !k.contains("SSL_CERTIFICATE_LOCATION") && !k.contains("SSL_KEY_LOCATION"))
        .collect();
    let log = LogFile::new(&prefix);
    let mut bridge = spawn_bridge(MTLS_BOOTSTRAP, &prefix, &bridge_env(&prefix, &env), &log.0);
    let body = wait_unready_with(&bridge, "alert", Duration::from_secs(30)).await;
    assert!(body.contains("Kafka metadata not reachable"), "{body}");
    assert!(
        body.contains("bad certificate") || body.contains("certificate required"),
        "{body}"
    );
    assert_eq!(bridge.child.try_wait().expect("try_wait"), None);
    bridge.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn without_read_on_an_empty_ledger_the_bridge_is_not_ready_and_names_the_read_acl() {
    // Before: an empty ledger counted as read from its end offset, which
    // Describe gives: the replica became ready with cross-replica
    // duplicate detection off, and never again once the ledger had records.
    let s = Secured::get().await;
    let mut u = Unprivileged::start(&s, "it-noread-", LeaveOut::TopicRead).await;
    let ledger = format!("{}.ledger", u.prefix);
    let body = wait_unready_with(
        &u.bridge,
        &format!("grant the bridge's principal Read on topic {ledger}"),
        Duration::from_secs(60),
    )
    .await;
    assert!(body.contains("TopicAuthorizationFailed"), "{body}");
    // It stays so: the refusal is not read as an empty ledger.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = get(u.bridge.admin, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let text = u.log.text();
    assert!(
        text.contains("Kafka refuses to let the bridge read the duplicates ledger"),
        "{text}"
    );
    u.bridge.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn without_write_on_a_routed_topic_the_503_and_readyz_name_the_topic_and_the_acl() {
    // Before: every delivery got 503 "Kafka refused the write", /readyz
    // said "ready", and only the log named TopicAuthorizationFailed.
    let s = Secured::get().await;
    let mut u = Unprivileged::start(&s, "it-nowrite-", LeaveOut::RoutedTopicWrite).await;
    wait_ready(&u.bridge, Duration::from_secs(60)).await;
    let topic = format!("{}.taxinvoice.state.issue", u.prefix);
    let sample = samples("deliveries.jsonl").remove(0);
    let a = post(
        &u.bridge,
        &sample.header_list(),
        sample.body.clone().into_bytes(),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    let named = format!("Write on topic {topic}");
    assert!(
        a.body.contains(&named) && a.body.contains("TopicAuthorizationFailed"),
        "{}\nthe bridge's log:\n{}",
        a.body,
        u.log.text()
    );
    // The next delivery there is answered at once, without a transaction
    // (one goes to Kafka again every 10 s).
    let started = Instant::now();
    let again = post(
        &u.bridge,
        &sample.header_list(),
        sample.body.clone().into_bytes(),
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        again.body
    );
    assert!(again.body.contains(&named), "{}", again.body);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // /readyz names it as a warning, and stays 200: the other topics
    // still take deliveries.
    let until = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get(u.bridge.admin, "/readyz").await;
        if body.contains(&named) {
            assert_eq!(status, StatusCode::OK, "{body}");
            break body;
        }
        assert!(
            Instant::now() < until,
            "/readyz never named {named:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        body.contains("warning: Kafka denied the bridge Write"),
        "{body}"
    );
    let (_, metrics) = get(u.bridge.admin, "/metrics").await;
    assert!(
        metrics.contains(r#"popbill_bridge_publish_failures_total{reason="write_denied"} 2"#),
        "{metrics}"
    );
    let text = u.log.text();
    assert!(
        text.contains("Kafka denies the bridge Write on this topic"),
        "{text}"
    );
    u.bridge.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn a_broker_certificate_without_the_connected_name_makes_readiness_name_the_name_not_the_ca()
{
    // Before: readiness said only librdkafka's "certificate verify
    // failed ... verify that ssl.ca.location is correctly configured",
    // and the CA was right. "localhost" reaches 127.0.0.1, a name the
    // broker's certificate (kafka-0.popbill.test, 127.0.0.1) does not list.
    let s = Secured::get().await;
    let prefix = unique("it-badname-");
    let env = mtls_env(&s);
    let log = LogFile::new(&prefix);
    let brokers = MTLS_BOOTSTRAP.replace("127.0.0.1", "localhost");
    let mut bridge = spawn_bridge(&brokers, &prefix, &bridge_env(&prefix, &env), &log.0);
    let body = wait_unready_with(
        &bridge,
        "does not name \"localhost\", the host the bridge connected to",
        Duration::from_secs(30),
    )
    .await;
    assert!(
        body.contains("it names kafka-0.popbill.test, 127.0.0.1"),
        "{body}"
    );
    assert!(body.contains("put one of those in kafka.brokers"), "{body}");
    let text = log.text();
    assert!(text.contains("Kafka's certificate is refused"), "{text}");
    assert_eq!(bridge.child.try_wait().expect("try_wait"), None);
    bridge.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn an_expired_broker_certificate_makes_readiness_say_it_expired_not_blame_the_ca() {
    // librdkafka says "certificate verify failed ... verify that
    // ssl.ca.location is correctly configured" for an expired certificate
    // as for a foreign CA; until now only a local TLS server in the unit
    // tests showed that the bridge tells them apart.
    let s = Secured::get().await;
    let prefix = unique("it-expired-");
    let env = mtls_env(&s);
    let log = LogFile::new(&prefix);
    let mut bridge = spawn_bridge(
        EXPIRED_BOOTSTRAP,
        &prefix,
        &bridge_env(&prefix, &env),
        &log.0,
    );
    let body = wait_unready_with(&bridge, "has expired", Duration::from_secs(30)).await;
    assert!(
        body.contains(&format!(
            "the certificate of the broker at {EXPIRED_BOOTSTRAP} has expired: renew"
        )),
        "{body}"
    );
    assert!(!body.contains("not signed by a CA"), "{body}");
    let text = log.text();
    assert!(text.contains("Kafka's certificate is refused"), "{text}");
    assert_eq!(bridge.child.try_wait().expect("try_wait"), None);
    bridge.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn a_sasl_password_from_a_file_logs_in_never_shows_and_its_rotation_restarts_the_bridge_with_status_4()
 {
    let s = Secured::get().await;
    let _cluster = CLUSTER_ACL.lock().await;
    let prefix = unique("it-pwfile-");
    let p = prefix.clone();
    let acls = tokio::task::spawn_blocking(move || LeastPrivilege::grant(&p))
        .await
        .expect("granting ACLs");
    let password = s.password("bridge");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("sasl-password");
    // As `kubectl create secret --from-file` or `echo` leaves it.
    std::fs::write(&file, format!("{password}\n")).expect("password file");
    let env: Vec<(&'static str, String)> = sasl_env(&s, None)
        .into_iter()
        .filter(|(k, _)| !k.ends_with("SASL_PASSWORD"))
        .chain([
            (
                "POPBILL_BRIDGE_KAFKA__SECRET_FILES__SASL_PASSWORD",
                file.to_string_lossy().into_owned(),
            ),
            (
                "POPBILL_BRIDGE_LIMITS__RELOAD_INTERVAL",
                "300ms".to_string(),
            ),
        ])
        .collect();
    let env = bridge_env(&prefix, &env);

    // --check-config names the file, never the password.
    let checked = configured_command(SASL_BOOTSTRAP, &prefix)
        .arg("--check-config")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("--check-config");
    let shown = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(shown.contains("sasl-password"), "{shown}");
    assert!(!shown.contains(&password), "{shown}");

    let log = LogFile::new(&prefix);
    let mut bridge = spawn_bridge(SASL_BOOTSTRAP, &prefix, &env, &log.0);
    wait_ready(&bridge, Duration::from_secs(60)).await;
    let sample = samples("deliveries.jsonl").remove(0);
    let a = post(
        &bridge,
        &sample.header_list(),
        sample.body.clone().into_bytes(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let (_, metrics) = get(bridge.admin, "/metrics").await;
    assert!(!metrics.contains(&password), "the password is on /metrics");

    // The Secret is rotated: an orderly stop, status 4, for a new start.
    std::fs::write(&file, "rotated-password\n").expect("rotate");
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = bridge.child.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            Instant::now() < until,
            "the bridge did not restart on a rotated password"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(4), "{}", log.text());
    let text = log.text();
    assert!(text.contains("a Kafka secret file changed"), "{text}");
    assert!(!text.contains(&password), "the password is in the log");
    assert!(
        !text.contains("rotated-password"),
        "the new password is in the log"
    );
    drop(acls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker of scripts/kafka.sh"]
async fn without_describe_configs_readiness_lists_the_unchecked_settings_and_the_acl() {
    // Before: the settings checks were skipped without a word on /readyz
    // (a refused topic comes back with no settings, not as an error).
    let s = Secured::get().await;
    let u = Unprivileged::start(&s, "it-nodescribe-", LeaveOut::DescribeConfigs).await;
    wait_ready(&u.bridge, Duration::from_secs(60)).await;
    let until = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = get(u.bridge.admin, "/readyz").await;
        if body.contains("DescribeConfigs on the Cluster")
            && body.contains("DescribeConfigs on its topics")
        {
            assert_eq!(status, StatusCode::OK, "listed, not blocking: {body}");
            break body;
        }
        assert!(
            Instant::now() < until,
            "/readyz never named DescribeConfigs: {body}\nthe bridge's log:\n{}",
            u.log.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        body.contains("warning: Kafka refused DescribeConfigs on"),
        "{body}"
    );
}
