//! The binary as a user runs it: `--help`, configuration errors,
//! `--check-config`, and `--dev` from start to SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::common::*;

/// Two distinct free ports (both held until both are known).
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = |l: &std::net::TcpListener| l.local_addr().expect("addr").port();
    (port(&a), port(&b))
}

#[test]
fn help_explains_the_flags_and_where_settings_come_from() {
    let out = bridge_command().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--config",
        "--listen",
        "--admin-listen",
        "--brokers",
        "--dev",
        "--check-config",
        "POPBILL_BRIDGE_KAFKA__BROKERS",
        "NOTHING IS DURABLE",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

#[test]
fn starting_without_brokers_is_an_error_that_says_how_to_fix_it() {
    let out = bridge_command().output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kafka.brokers is not set"), "{err}");
    assert!(err.contains("--brokers") && err.contains("--dev"), "{err}");
}

#[test]
fn bad_config_files_are_named_with_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[kafka]\nbrokers = \"k:9092\"\nmessage_timeout = \"9s\"\n",
    )
    .expect("write");
    let out = bridge_command()
        .args(["--config", path.to_str().expect("utf8")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kafka.message_timeout"), "{err}");

    let out = bridge_command()
        .args(["--config", "/nonexistent/popbill.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/popbill.toml"));
}

#[test]
fn check_config_accepts_the_shipped_file_and_hides_secrets() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/config/popbill-bridge.toml");
    let out = bridge_command()
        .args(["--config", cfg, "--brokers", "k1:9092", "--check-config"])
        .env(
            "POPBILL_BRIDGE_KAFKA__PROPERTIES__SASL_PASSWORD",
            "hunter2-secret",
        )
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("configuration is valid"));
    assert!(text.contains("k1:9092"));
    assert!(text.contains("sasl.password"), "{text}");
    assert!(!text.contains("hunter2-secret"), "secret printed:\n{text}");
}

/// A `--dev` bridge on free loopback ports, ready; killed when dropped,
/// so no bridge outlives a failed assertion.
struct DevBridge {
    child: Option<std::process::Child>,
    webhook: std::net::SocketAddr,
    admin: std::net::SocketAddr,
}

impl DevBridge {
    async fn start(stdout: Stdio, stderr: Stdio, env: &[(&str, &str)]) -> DevBridge {
        let (port, admin_port) = free_ports();
        let child = bridge_command()
            .args([
                "--dev",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--admin-listen",
                &format!("127.0.0.1:{admin_port}"),
            ])
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn");
        let bridge = DevBridge {
            child: Some(child),
            webhook: format!("127.0.0.1:{port}").parse().expect("addr"),
            admin: format!("127.0.0.1:{admin_port}").parse().expect("addr"),
        };
        poll_readyz(
            bridge.admin,
            Duration::from_secs(30),
            "--dev bridge never became ready",
            |s, _| s == StatusCode::OK,
        )
        .await;
        bridge
    }

    /// Deliveries of the tax-invoice Issue sample it acknowledged, as its
    /// metrics count them.
    async fn acknowledged_samples(&self) -> f64 {
        let text = get(self.admin, "/metrics").await.1;
        metric(
            &text,
            "popbill_bridge_deliveries_total",
            &[
                ("outcome", "acknowledged"),
                ("event_type", "TAXINVOICE.STATE:Issue"),
            ],
        )
    }
}

impl Drop for DevBridge {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_acknowledges_a_sample_counts_it_and_stops_cleanly_on_sigterm() {
    let mut bridge = DevBridge::start(
        Stdio::piped(),
        Stdio::piped(),
        &[("POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY", "0s")],
    )
    .await;
    let child_id = bridge.child.as_ref().map(|c| c.id()).unwrap_or_default();
    let webhook = bridge.webhook;

    let sample = samples("deliveries.jsonl").remove(0);
    let a = request(
        webhook,
        hyper::Method::POST,
        "/popbill/webhook",
        &sample.header_list(),
        sample.body.clone().into_bytes(),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(bridge.acknowledged_samples().await, 1.0);

    let status = Command::new("kill")
        .args(["-TERM", &child_id.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let t0 = Instant::now();
    let exit = loop {
        if let Some(s) = bridge
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = bridge
        .child
        .take()
        .expect("child")
        .wait_with_output()
        .expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(exit.success(), "exit {exit:?}\n{stderr}\n{stdout}");
    assert!(stderr.contains("NOTHING IS DURABLE"), "{stderr}");
    assert!(
        stderr.contains("embedded Kafka (librdkafka mock cluster) at 127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stdout.contains("delivery acknowledged"),
        "one log line per delivery:\n{stdout}"
    );
    assert!(
        stdout.contains(sample.header("Pb-Webhook-MID").expect("mid")),
        "{stdout}"
    );
    // Shutdown logs every phase it goes through, in order (issue #21:
    // only the first and the last were written).
    let mut at = 0;
    for line in [
        "shutting down: readiness fails",
        "shutting down, phase 2: stop intake",
        "shutting down, phase 3: drain",
        "shutting down, phase 4: stop background work",
        "shutting down, phase 5: flush the ledger",
        "shutting down, phase 6: flush the producer",
        "popbill-bridge stopped",
    ] {
        let found = stdout[at..].find(line);
        assert!(
            found.is_some(),
            "no {line:?} after the previous phase:\n{stdout}"
        );
        at += found.unwrap_or_default();
    }
    // The embedded cluster outlives the bridge's Kafka clients: before,
    // it went first and every client logged its disconnect (15 lines of
    // `Disconnected` after "stopped").
    let after_stop = &stdout[at..];
    assert!(
        !after_stop.contains("Disconnected"),
        "Kafka clients outlived the embedded cluster:\n{after_stop}"
    );
}

/// stdout and stderr together: where a message lands is not the point.
fn all_output(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_mistyped_or_invalid_kafka_property_is_named_without_its_value() {
    let runs: [&[&str]; 2] = [
        &["--check-config"],
        &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
    ];
    for args in runs {
        for (var, property, value) in [
            (
                "POPBILL_BRIDGE_KAFKA__PROPERTIES__SASL_PASSWRD",
                "sasl.passwrd",
                "hunter2-typo",
            ),
            (
                "POPBILL_BRIDGE_KAFKA__PROPERTIES__LINGER_MS",
                "linger.ms",
                "soon-hunter3",
            ),
        ] {
            let out = bridge_command()
                .args(["--brokers", "127.0.0.1:1"])
                .args(args)
                .env(var, value)
                .env("POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY", "0s")
                .output()
                .expect("runs");
            let text = all_output(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?} {property}:\n{text}");
            assert!(text.contains(property), "{args:?}: not named:\n{text}");
            assert!(!text.contains(value), "{args:?}: value printed:\n{text}");
        }
    }
}

/// Words of the warning a bridge open to anyone gives.
const OPEN_WARNING: &str = "neither credentials nor a source allow-list";

#[test]
fn check_config_warns_when_anyone_may_deliver() {
    let out = bridge_command()
        .args(["--brokers", "k1:9092", "--check-config"])
        .output()
        .expect("runs");
    let text = all_output(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches(OPEN_WARNING).count(), 1, "{text}");

    for (var, value) in [
        ("POPBILL_BRIDGE_AUTH__API_KEYS", "k"),
        ("POPBILL_BRIDGE_ACCESS__ALLOW", "popbill"),
    ] {
        let out = bridge_command()
            .args(["--brokers", "k1:9092", "--check-config"])
            .env(var, value)
            .output()
            .expect("runs");
        let text = all_output(&out);
        assert!(out.status.success(), "{text}");
        assert!(!text.contains(OPEN_WARNING), "{var}: {text}");
    }
    // --dev is for trying it out on one's own machine: no warning.
    let out = bridge_command()
        .args(["--dev", "--check-config"])
        .output()
        .expect("runs");
    let text = all_output(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(OPEN_WARNING), "--dev: {text}");
}

#[test]
fn a_bridge_open_to_anyone_logs_one_warning_at_start() {
    use std::io::BufRead;
    let mut child = bridge_command()
        .args([
            // Kafka need not answer for the bridge to start listening.
            "--brokers",
            "127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY", "0s")
        .env("POPBILL_BRIDGE_SERVER__SHUTDOWN_TIMEOUT", "1s")
        .env("POPBILL_BRIDGE_DEDUP__ENABLED", "false")
        .env("POPBILL_BRIDGE_LOG__LEVEL", "popbill_bridge=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_secs(30);
    while !lines
        .iter()
        .any(|l: &String| l.contains("popbill-bridge listening"))
    {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("bridge did not start:\n{}", lines.join("\n"));
            }
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let t0 = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
    lines.extend(rx.try_iter());
    let text = lines.join("\n");
    assert_eq!(text.matches(OPEN_WARNING).count(), 1, "{text}");
}

/// What `--dev --check-config` says the webhook listens on, with `args`
/// added and `env` set.
fn dev_listen(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = bridge_command()
        .args(["--dev", "--check-config"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.trim().strip_prefix("listen: "))
        .map(|a| a.trim_end_matches(',').to_string())
        .unwrap_or_else(|| panic!("no listen line in {text}"))
}

/// Issue #24: `--dev` moved the listener to loopback whenever its address
/// equalled the default, even when typed (`podman run -p 8080:8080 IMAGE
/// --dev --listen 0.0.0.0:8080` could not be reached). `--dev` changes the
/// default only: an explicit flag, environment variable or file setting
/// always wins.
#[test]
fn dev_mode_listens_on_loopback_by_default_and_where_it_is_told_otherwise() {
    assert_eq!(dev_listen(&[], &[]), "127.0.0.1:8080");
    assert_eq!(
        dev_listen(&["--listen", "0.0.0.0:8080"], &[]),
        "0.0.0.0:8080"
    );
    assert_eq!(
        dev_listen(&[], &[("POPBILL_BRIDGE_SERVER__LISTEN", "0.0.0.0:8080")]),
        "0.0.0.0:8080"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bridge.toml");
    std::fs::write(&file, "[server]\nlisten = \"0.0.0.0:8080\"\n").expect("write");
    let path = file.to_string_lossy().into_owned();
    assert_eq!(dev_listen(&["--config", &path], &[]), "0.0.0.0:8080");
}

/// Issue #24: a binary built outside the Dockerfile's build stage linked
/// `libz.so.1`, which the distroless run image lacks (exit 127 at start).
/// `.cargo/config.toml` makes zlib static for every build; this holds the
/// binary's shared libraries to what the run image provides.
#[test]
fn the_binary_needs_only_the_shared_libraries_the_run_image_provides() {
    let allowed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/run-image-libraries.txt"),
    )
    .expect("deploy/run-image-libraries.txt");
    let allowed: Vec<&str> = allowed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let out = std::process::Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_popbill-bridge")])
        .output()
        .expect("readelf (binutils, installed with the C toolchain the build needs)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("Shared library: [")?.1.strip_suffix(']'))
        .collect();
    assert!(needed.contains(&"libc.so.6"), "{text}");
    let foreign: Vec<&&str> = needed.iter().filter(|n| !allowed.contains(n)).collect();
    assert!(
        foreign.is_empty(),
        "the binary needs {foreign:?}, which the run image lacks (all it needs: {needed:?})"
    );
}

/// A log collector that stops reading (a full pipe) must not stop
/// deliveries: before, each delivery's line was a blocking `write(2)` on a
/// runtime worker, and once the pipe's 64 KiB were full every worker hung
/// in it and no delivery was answered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_whose_stdout_nobody_reads_keeps_answering_deliveries() {
    let mut bridge = DevBridge::start(Stdio::piped(), Stdio::null(), &[]).await;
    // Held, never read: the pipe fills and stays full.
    let _unread_stdout = bridge.child.as_mut().and_then(|c| c.stdout.take());
    let webhook = bridge.webhook;

    // 1,200 lines of ~330 bytes: six times what the pipe holds.
    let sample = samples("deliveries.jsonl").remove(0);
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..8 {
        let sample = sample.clone();
        senders.spawn(async move {
            for n in 0..150 {
                let mut headers = sample.header_list();
                for (k, v) in headers.iter_mut() {
                    if k.eq_ignore_ascii_case("Pb-Webhook-MID") {
                        *v = format!("stdout-unread-{sender}-{n}");
                    }
                }
                let answer = tokio::time::timeout(
                    Duration::from_secs(10),
                    request(
                        webhook,
                        hyper::Method::POST,
                        "/popbill/webhook",
                        &headers,
                        sample.body.clone().into_bytes(),
                    ),
                )
                .await;
                match answer {
                    Ok(a) if a.status == StatusCode::OK => {}
                    Ok(a) => return Err(format!("delivery {n} answered {} {}", a.status, a.body)),
                    Err(_) => return Err(format!("delivery {n} got no answer in 10 s")),
                }
            }
            Ok(())
        });
    }
    while let Some(done) = senders.join_next().await {
        if let Err(e) = done.expect("sender task") {
            panic!("with stdout unread: {e}");
        }
    }
    assert_eq!(bridge.acknowledged_samples().await, 1200.0);
}
