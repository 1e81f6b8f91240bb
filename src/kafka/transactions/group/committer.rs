//! The committer: the loop that keeps a writer open for deliveries and
//! seals the open group when a writer is free for the next one.

use super::*;

impl GroupCommit {
    /// The committer. It keeps a writer open for deliveries; once the open
    /// group has members it takes a free writer (waiting for one only while
    /// a commit runs, which frees one; a free writer's transaction is
    /// begun already, see `requeue`), swaps it in and hands the sealed
    /// group to a task that commits it.
    pub(super) async fn run(self: Arc<Self>) {
        let mut free = self.free_rx.lock().await;
        let mut closing = self.closing_rx.clone();
        loop {
            // A. A writer open for deliveries.
            if self.lock_open().writer.is_none() {
                let w = tokio::select! {
                    w = free.recv() => w,
                    _ = closing.wait_for(|c| *c) => None,
                };
                let Some(w) = w else { return };
                self.lock_open().writer = Some(w);
                continue;
            }
            // B. A group to seal.
            self.wait_for_members().await;
            let stopping = self.is_closing();
            // C. Its successor: none when stopping, or when no writer is
            //    free and no commit runs (others still initialising).
            let next = if stopping {
                None
            } else {
                self.next_free(&mut free).await
            };
            self.linger().await;
            let (sealed, members, ledger, lines, opened) = {
                let mut open = self.lock_open();
                let members = std::mem::take(&mut open.members);
                let ledger = std::mem::take(&mut open.ledger);
                let lines = std::mem::take(&mut open.lines);
                let sealed = std::mem::replace(&mut open.writer, next);
                (sealed, members, ledger, lines, open.since)
            };
            if let Some(sealed) = sealed
                && !members.is_empty()
            {
                self.committing.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(self.clone().commit(sealed, members, ledger, lines, opened));
            }
            if stopping {
                self.commit_ended.notify_waiters();
                return;
            }
        }
    }

    /// A free writer: one at hand, or the one a running commit frees.
    async fn next_free(
        &self,
        free: &mut mpsc::UnboundedReceiver<Arc<Writer>>,
    ) -> Option<Arc<Writer>> {
        loop {
            let ended = self.commit_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if let Ok(w) = free.try_recv() {
                return Some(w);
            }
            if self.committing.load(Ordering::Acquire) == 0 {
                return None;
            }
            ended.await;
        }
    }

    async fn wait_for_members(&self) {
        loop {
            let woken = self.has_members.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if !self.lock_open().members.is_empty() || self.is_closing() {
                return;
            }
            woken.await;
        }
    }

    /// With more than two writers a free one is often at hand while
    /// another commits: the group then gathers for up to
    /// `commit_interval`, or until that commit ends.
    async fn linger(&self) {
        if self.producers <= 2 || self.committing.load(Ordering::Acquire) == 0 {
            return;
        }
        let until = self.lock_open().since + self.commit_interval;
        let ended = self.commit_ended.notified();
        tokio::select! {
            () = ended => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }
}
