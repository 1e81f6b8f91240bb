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
//! Background work listens on a [`Signal`]; the owner fires its
//! [`Trigger`] once.

use std::time::Duration;

use rdkafka::producer::Producer as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::dedup::Dedup;
use crate::health::Health;
use crate::kafka::publish::Producer;

/// Fires a [`Signal`]; dropping it fires it too, so work never outlives
/// its owner by accident.
pub struct Trigger(watch::Sender<bool>);

/// Where background work learns that it should stop.
#[derive(Clone)]
pub struct Signal(watch::Receiver<bool>);

/// A new trigger and its signal.
pub fn signal() -> (Trigger, Signal) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Signal(rx))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Signal {
    /// Resolves once the trigger fired (or was dropped).
    pub async fn fired(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `d`; true when the signal fired first.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = self.fired() => true,
        }
    }
}

/// What shutdown managed to finish.
#[derive(Debug)]
pub struct ShutdownReport {
    /// Every open request got its answer within the budget.
    pub drained: bool,
    /// Records still unconfirmed by Kafka after the final flush.
    pub unflushed: i32,
}

/// Everything a running bridge must stop, and how long it may take.
pub struct Shutdown {
    pub health: std::sync::Arc<Health>,
    pub dedup: std::sync::Arc<Dedup>,
    pub producer: Producer,
    /// Stops the webhook listener.
    pub intake: Trigger,
    pub webhook: JoinHandle<bool>,
    /// Stops the admin listener and every background loop.
    pub background: Trigger,
    pub admin: JoinHandle<bool>,
    /// Loops that may sit in a blocking Kafka call: aborted, not awaited.
    pub loops: Vec<JoinHandle<()>>,
    pub delay: Duration,
    pub budget: Duration,
}

impl Shutdown {
    /// Runs every phase in order; see the module documentation.
    pub async fn run(self) -> ShutdownReport {
        self.announce().await;
        let closed = Instant::now();
        let left = |budget: Duration| budget.saturating_sub(closed.elapsed());
        self.intake.fire();
        // Bounded by the budget inside the server's own drain.
        let drained = self.webhook.await.unwrap_or(false);
        for l in &self.loops {
            l.abort();
        }
        self.background.fire();
        let _ = self.admin.await;
        self.dedup.flush_ledger(left(self.budget)).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_fires_once_for_every_listener_and_on_drop() {
        let (trigger, signal) = signal();
        let (mut a, mut b) = (signal.clone(), signal);
        assert!(!a.is_fired());
        trigger.fire();
        a.fired().await;
        b.fired().await;
        assert!(a.is_fired() && b.is_fired());

        let (trigger, mut c) = self::signal();
        drop(trigger);
        tokio::time::timeout(Duration::from_secs(1), c.fired())
            .await
            .expect("a dropped trigger releases its listeners");
    }

    #[tokio::test]
    async fn sleep_ends_early_when_fired() {
        let (trigger, mut s) = signal();
        trigger.fire();
        assert!(s.sleep(Duration::from_secs(60)).await);
        let (_t, mut s) = signal();
        assert!(!s.sleep(Duration::from_millis(1)).await);
    }
}
