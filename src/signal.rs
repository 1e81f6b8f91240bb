//! How background work learns that it should stop: the owner fires a
//! [`Trigger`] once; every clone of its [`Signal`] sees it.

use std::time::Duration;

use tokio::sync::watch;

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

    #[cfg(test)]
    fn is_fired(&self) -> bool {
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

/// Resolves when the process is asked to stop: SIGTERM (Kubernetes, `kill`)
/// or SIGINT (Ctrl-C).
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests;
