//! Stopping in order. A running bridge stops in named phases, each with
//! its own log line, within one budget (`server.shutdown_timeout`):
//!
//! 1. **announce**: readiness fails at once; the webhook keeps serving for
//!    `server.shutdown_delay`, so load balancers stop sending first;
//! 2. **stop intake**: the webhook listener closes;
//! 3. **drain**: every request in flight gets its real answer;
//! 4. **stop background work**: readiness rounds, the ledger follower, the
//!    file reloader and the admin listener stop;
//! 5. **flush the ledger**: every outstanding delivery report is awaited
//!    (requests whose senders hung up included), then the ledger writer
//!    hands over its last batch — so every event Kafka confirmed gets its
//!    ledger entry;
//! 6. **flush the producer**: what is left of the budget goes to the
//!    remaining records; any still unconfirmed are counted (none of them
//!    was acknowledged).
//!
//! Background work listens on a [`crate::signal::Signal`]; the owner fires its
//! [`Trigger`] once (the signal is a module of its own, `crate::signal`,
//! which every part may use without importing this one).

use std::time::Duration;

use rdkafka::producer::Producer as _;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::dedup::Dedup;
use crate::health::Health;
use crate::kafka::client::Producer;
use crate::kafka::transactions::GroupCommit;
use crate::signal::Trigger;

/// What shutdown managed to finish.
#[derive(Debug)]
pub struct ShutdownReport {
    /// Every open request got its answer within the budget.
    pub drained: bool,
    /// Records still unconfirmed by Kafka after the final flush.
    pub unflushed: i32,
}

/// Everything a running bridge must stop, and how long it may take.
pub(crate) struct Shutdown {
    pub(crate) health: std::sync::Arc<Health>,
    pub dedup: std::sync::Arc<Dedup>,
    pub producer: Producer,
    /// The transactional writers: the last group is committed before the
    /// ledger phase.
    pub(crate) transactions: Option<std::sync::Arc<GroupCommit>>,
    /// Stops the webhook listener.
    pub(crate) intake: Trigger,
    pub webhook: JoinHandle<bool>,
    /// Stops the admin listener and every background loop.
    pub(crate) background: Trigger,
    pub admin: JoinHandle<bool>,
    /// Loops that may sit in a blocking Kafka call: aborted, not awaited.
    pub(crate) loops: Vec<JoinHandle<()>>,
    pub delay: Duration,
    pub budget: Duration,
}

impl Shutdown {
    /// Runs every phase in order; see the module documentation.
    pub async fn run(self) -> ShutdownReport {
        self.announce().await;
        let closed = Instant::now();
        let left = |budget: Duration| budget.saturating_sub(closed.elapsed());
        phase(
            2,
            "stop intake: the webhook listener closes",
            left(self.budget),
        );
        self.intake.fire();
        phase(
            3,
            "drain: every request in flight gets its answer",
            left(self.budget),
        );
        // Bounded by the budget inside the server's own drain.
        let drained = self.webhook.await.unwrap_or(false);
        phase(4, "stop background work", left(self.budget));
        for l in &self.loops {
            l.abort();
        }
        self.background.fire();
        let _ = self.admin.await;
        phase(
            5,
            "flush the ledger: the last transactions commit, every outstanding report is awaited",
            left(self.budget),
        );
        if let Some(t) = &self.transactions {
            t.close(Instant::now() + left(self.budget)).await;
        }
        self.dedup.flush_ledger(left(self.budget)).await;
        phase(6, "flush the producer", left(self.budget));
        let unflushed = flush_producer(
            self.producer,
            left(self.budget).max(Duration::from_millis(100)),
        )
        .await;
        info!(drained, unflushed, "popbill-bridge stopped");
        ShutdownReport { drained, unflushed }
    }

    async fn announce(&self) {
        self.health.set_shutting_down();
        info!(delay = ?self.delay, "shutting down: readiness fails, still serving during the delay");
        tokio::time::sleep(self.delay).await;
    }
}

/// The log line that opens a phase, with what is left of the budget.
fn phase(number: u8, what: &str, budget_left: Duration) {
    info!(
        phase = number,
        budget_left_ms = budget_left.as_millis() as u64,
        "shutting down, phase {number}: {what}"
    );
}

/// The last phase: delivery reports of answered requests already arrived,
/// so this only waits for ledger records and for writes whose requests
/// were abandoned.
async fn flush_producer(producer: Producer, budget: Duration) -> i32 {
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
    unflushed
}
