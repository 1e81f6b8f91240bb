//! Retries: how often and how far apart to try, and the loop that tries
//! until POPBiLL's rule is met.

use std::time::Duration;

use super::answer::TryOutcome;
use super::delivery::Delivery;
use super::sender::Sender;

/// How often and how far apart to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Sends after the first one fails.
    pub retries: u32,
    /// Wait between the end of one try and the start of the next.
    pub interval: Duration,
}

impl RetryPolicy {
    /// POPBiLL's, as far as its documentation tells: 4 sends in total,
    /// 5 minutes apart.
    pub(crate) const POPBILL: RetryPolicy = RetryPolicy {
        retries: 3,
        interval: Duration::from_secs(300),
    };

    pub(crate) fn tries(&self) -> u32 {
        self.retries.saturating_add(1)
    }
}

/// What [`deliver`] tells after each try.
pub struct TryReport<'a> {
    /// 1-based.
    pub number: u32,
    pub of: u32,
    pub outcome: &'a TryOutcome,
    /// When another try follows: how long until it.
    pub next_in: Option<Duration>,
}

/// Tries until POPBiLL's rule is met or the retries are spent, calling
/// `each` after every try. Returns every try's outcome; the delivery
/// succeeded when the last one did.
pub async fn deliver(
    sender: &Sender,
    delivery: &Delivery,
    policy: RetryPolicy,
    mut each: impl FnMut(&TryReport<'_>),
) -> Vec<TryOutcome> {
    let of = policy.tries();
    let mut tries = Vec::new();
    for number in 1..=of {
        let outcome = sender.try_once(delivery).await;
        let done = outcome.succeeded() || number == of;
        each(&TryReport {
            number,
            of,
            outcome: &outcome,
            next_in: (!done).then_some(policy.interval),
        });
        tries.push(outcome);
        if done {
            break;
        }
        tokio::time::sleep(policy.interval).await;
    }
    tries
}
