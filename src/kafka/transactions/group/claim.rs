//! Whether a delivery's request still waits for its group's verdict.
//!
//! The request holds a [`Withdrawal`], the group's member a [`Claim`] on
//! the same state. A request answered 503 at its deadline (or whose client
//! went away) while its group had not asked for the commit yet makes the
//! group abort: a 503 then means "not written", and POPBiLL's retry cannot
//! meet a copy that a commit finishing after the 503 made visible (seen in
//! the chaos suite: Kafka stopped while groups waited for their reports;
//! the reports came after the deadlines, the groups committed, and the
//! retries, on another replica whose ledger had not seen those commits
//! yet, were published again). Once the commit has been asked for, it is
//! too late to withdraw: the request says so (`commit_pending`), and only
//! the ledger recognises the retry then.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// A member's request still waits for the group's verdict.
const WAITING: u8 = 0;
/// The group's commit was asked for with this member in it.
const COMMITTING: u8 = 1;
/// Its request was answered without the verdict (503 at its deadline, or
/// the client went away): the group must not commit.
const WITHDRAWN: u8 = 2;

/// The group's side: taken for the commit, or found withdrawn.
#[derive(Clone)]
pub(super) struct Claim(Arc<AtomicU8>);

impl Claim {
    pub(super) fn waiting() -> Claim {
        Claim(Arc::new(AtomicU8::new(WAITING)))
    }

    /// A claim already taken for a commit (for tests of a request whose
    /// own hold is gone).
    #[cfg(test)]
    pub(super) fn committing() -> Claim {
        Claim(Arc::new(AtomicU8::new(COMMITTING)))
    }

    /// Takes the member into the commit; false if its request was already
    /// answered, and the group must then abort.
    pub(super) fn take_for_commit(&self) -> bool {
        match self
            .0
            .compare_exchange(WAITING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == COMMITTING,
        }
    }

    fn withdraw(&self) -> bool {
        self.0
            .compare_exchange(WAITING, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Held by the request that sent a delivery into a group; dropping it
/// says the request no longer waits (see the module).
pub(crate) struct Withdrawal(Claim);

impl Withdrawal {
    pub(super) fn of(claim: Claim) -> Withdrawal {
        Withdrawal(claim)
    }

    /// Stops waiting now: true if the group had not asked for its commit
    /// (it will abort: the delivery is not written), false if the commit
    /// was already asked for (its outcome is not known yet).
    pub(crate) fn withdraw(self) -> bool {
        // Drop then finds nothing left to change.
        self.0.withdraw()
    }
}

impl Drop for Withdrawal {
    fn drop(&mut self) {
        // Fails, harmlessly, once the commit was asked for.
        self.0.withdraw();
    }
}
