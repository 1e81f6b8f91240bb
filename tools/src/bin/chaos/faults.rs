//! The faults, one function each: each injects its fault, waits it out,
//! undoes it, and gives the name of its row in the table (`None`: not run
//! here, and said why).

use std::time::{Duration, Instant};

use super::{Bridges, busiest_leader, secs, wait_replicated};

/// Injects fault `f` (see `Args::faults`); `notes` gathers what its row
/// should say besides the figures.
pub(super) async fn inject(
    f: &str,
    bridges: &Bridges,
    prefix: &str,
    notes: &mut Vec<String>,
) -> Option<String> {
    match f {
        "startup" => Some(startup(bridges).await),
        "1" => Some(kafka_stopped(bridges).await),
        "2" => Some(kafka_frozen(bridges).await),
        "3" => Some(replica_killed(bridges).await),
        "4" => Some(replica_terminated(bridges).await),
        "5" => {
            eprintln!(
                "chaos: fault 5 skipped: the single broker advertises its own address; network faults run \
                 against the cluster (CHAOS_CLUSTER=1 scripts/chaos.sh)"
            );
            None
        }
        "leader-kill" | "broker-pause" | "two-down" => {
            broker_fault(f, bridges, prefix, notes).await
        }
        "controller-kill" => Some(controller_killed(bridges).await),
        "latency" | "stall" | "reset" | "bandwidth" | "loss" | "partition" => {
            network_fault(f, bridges).await
        }
        "rolling" => Some(rolling_restart(bridges, prefix, notes).await),
        other => {
            eprintln!("chaos: unknown fault {other}; skipped");
            None
        }
    }
}

async fn startup(bridges: &Bridges) -> String {
    eprintln!("chaos: start-up: both replicas started on a fresh broker under load");
    bridges.both_ready().await;
    "0 start-up, fresh broker".to_string()
}

/// The Kafka script's `on` (kill, pause, ...), `seconds` later its `off`.
async fn hold(bridges: &Bridges, on: &[&str], off: &[&str], seconds: u64) {
    bridges.kafka(on).await;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    bridges.kafka(off).await;
}

async fn kafka_stopped(bridges: &Bridges) -> String {
    let a = &bridges.args;
    eprintln!("chaos: fault 1: Kafka stopped for {} s", a.stop_seconds);
    hold(bridges, &["kill"], &["start"], a.stop_seconds).await;
    "1 Kafka stopped, restarted".to_string()
}

async fn kafka_frozen(bridges: &Bridges) -> String {
    let a = &bridges.args;
    eprintln!("chaos: fault 2: Kafka frozen for {} s", a.freeze_seconds);
    hold(bridges, &["pause"], &["resume"], a.freeze_seconds).await;
    "2 Kafka frozen (SIGSTOP)".to_string()
}

async fn replica_killed(bridges: &Bridges) -> String {
    eprintln!("chaos: fault 3: replica A SIGKILL, restart");
    bridges.signal(0, "-KILL");
    let _ = bridges.reap(0, Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(2)).await;
    bridges.start_replica(0);
    "3 replica SIGKILL, restarted".to_string()
}

async fn replica_terminated(bridges: &Bridges) -> String {
    eprintln!("chaos: fault 4: replica B SIGTERM, restart");
    bridges.signal(1, "-TERM");
    let code = bridges.reap(1, Duration::from_secs(30));
    eprintln!("chaos:   replica B exited with {code:?}");
    bridges.start_replica(1);
    format!(
        "4 replica SIGTERM (exit {})",
        code.map(|c| c.to_string()).unwrap_or("?".into())
    )
}

/// The leader of the busiest partition killed or frozen, or it and one
/// more broker killed (`two-down`).
async fn broker_fault(
    f: &str,
    bridges: &Bridges,
    prefix: &str,
    notes: &mut Vec<String>,
) -> Option<String> {
    let a = &bridges.args;
    let (b, p) = (bridges.args.brokers.clone(), prefix.to_string());
    let busiest = tokio::task::spawn_blocking(move || busiest_leader(&b, &p))
        .await
        .ok()
        .flatten();
    let Some((topic, part, leader)) = busiest.filter(|b| b.2 > 0) else {
        eprintln!("chaos: {f}: no leader found for the busiest partition; skipped");
        return None;
    };
    let part_name = format!("{}-{part}", topic.trim_start_matches(&format!("{prefix}.")));
    let id = leader.to_string();
    let name = match f {
        "leader-kill" => {
            eprintln!(
                "chaos: {f}: broker {leader} (leads {part_name}) SIGKILL, {} s",
                a.kill_seconds
            );
            hold(bridges, &["kill", &id], &["start", &id], a.kill_seconds).await;
            format!("leader SIGKILL {}s, restart", a.kill_seconds)
        }
        "broker-pause" => {
            eprintln!(
                "chaos: {f}: broker {leader} (leads {part_name}) SIGSTOP, {} s",
                a.pause_seconds
            );
            hold(bridges, &["pause", &id], &["resume", &id], a.pause_seconds).await;
            format!("leader SIGSTOP {}s", a.pause_seconds)
        }
        _ => {
            let other = (leader % 3 + 1).to_string();
            eprintln!(
                "chaos: {f}: brokers {leader} and {other} SIGKILL, {} s",
                a.down_seconds
            );
            let (x, y) = (["kill", id.as_str()], ["kill", other.as_str()]);
            let _ = tokio::join!(bridges.kafka(&x), bridges.kafka(&y));
            tokio::time::sleep(Duration::from_secs(a.down_seconds)).await;
            let (x, y) = (["start", id.as_str()], ["start", other.as_str()]);
            let _ = tokio::join!(bridges.kafka(&x), bridges.kafka(&y));
            notes.push(format!(
                "brokers {leader} and {other} were killed; {part_name} was led by {leader}"
            ));
            format!("2 brokers SIGKILL {}s", a.down_seconds)
        }
    };
    Some(name)
}

async fn controller_killed(bridges: &Bridges) -> String {
    let a = &bridges.args;
    eprintln!(
        "chaos: controller-kill: the KRaft controller (node 0) SIGKILL, {} s",
        a.kill_seconds
    );
    hold(bridges, &["kill", "0"], &["start", "0"], a.kill_seconds).await;
    format!("controller SIGKILL {}s, restart", a.kill_seconds)
}

/// A fault of the network between the bridges and the cluster
/// (scripts/netfault.sh).
async fn network_fault(f: &str, bridges: &Bridges) -> Option<String> {
    let a = &bridges.args;
    let (lat, jit) = (a.latency_ms.to_string(), a.jitter_ms.to_string());
    let loss = a.loss_percent.to_string();
    let (set, label, secs_): (Vec<&str>, String, u64) = match f {
        "latency" => (
            vec!["latency", &lat, &jit],
            format!(
                "+{}±{}ms latency {}s",
                a.latency_ms, a.jitter_ms, a.net_seconds
            ),
            a.net_seconds,
        ),
        "stall" => (
            vec!["stall"],
            format!("stalled conns {}s", a.net_seconds),
            a.net_seconds,
        ),
        "reset" => (
            vec!["reset"],
            format!(
                "conn resets /{}s {}s",
                a.reset_every_ms as f64 / 1e3,
                a.net_seconds
            ),
            a.net_seconds,
        ),
        "loss" => (
            vec!["loss", &loss],
            format!("{}% packet loss {}s", a.loss_percent, a.net_seconds),
            a.net_seconds,
        ),
        "bandwidth" => (
            vec!["bandwidth", &a.bandwidth],
            format!("{} cap {}s", a.bandwidth, a.net_seconds),
            a.net_seconds,
        ),
        _ => (
            vec!["partition"],
            format!("partition {}s", a.partition_seconds),
            a.partition_seconds,
        ),
    };
    eprintln!("chaos: {f}: {label}");
    if !bridges.netfault(&set).await {
        eprintln!("chaos: {f}: could not set the fault; skipped");
        bridges.netfault(&["clear"]).await;
        return None;
    }
    if f == "reset" {
        // Pulses: the toxic resets what passes while it is there.
        let (every, pulse) = (
            Duration::from_millis(a.reset_every_ms),
            Duration::from_millis(a.reset_pulse_ms),
        );
        let until = Instant::now() + Duration::from_secs(secs_);
        loop {
            tokio::time::sleep(pulse).await;
            bridges.netfault(&["clear"]).await;
            if Instant::now() + every > until {
                break;
            }
            tokio::time::sleep(every - pulse).await;
            bridges.netfault(&set).await;
        }
    } else {
        tokio::time::sleep(Duration::from_secs(secs_)).await;
    }
    bridges.netfault(&["clear"]).await;
    Some(label)
}

/// Brokers 1, 2, 3 in turn: stopped, started, and waited for until every
/// partition is in sync again.
async fn rolling_restart(bridges: &Bridges, prefix: &str, notes: &mut Vec<String>) -> String {
    eprintln!("chaos: rolling restart of brokers 1, 2, 3");
    for b in ["1", "2", "3"] {
        let t = Instant::now();
        bridges.kafka(&["stop", b]).await;
        let stopped = t.elapsed();
        bridges.kafka(&["start", b]).await;
        let synced = wait_replicated(&bridges.args.brokers, prefix, Duration::from_secs(180)).await;
        notes.push(format!(
            "broker {b}: stopped in {} s, back in sync {} s after the stop order",
            secs(stopped),
            synced.map(|_| secs(t.elapsed())).unwrap_or("?".into())
        ));
    }
    "rolling restart (3 brokers)".to_string()
}
