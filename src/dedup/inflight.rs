//! Copies in flight: what to do with a delivery ([`Admission`]), the first
//! copy's duty to settle how its publishing ended ([`Lead`]), and where the
//! later copies wait for that verdict ([`InFlight`]).
//!
//! One verb ends a lead: it is *settled*, with Kafka's verdict, by
//! [`Lead::settle`] (a verdict already known), by [`Lead::confirm`] (the
//! delivery report awaited), or by its drop (abandoned). The future that
//! ends in the verdict has one name here: the delivery report
//! ([`DeliveryReport`]).

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use crate::dedup::memory::unix_secs;
use crate::dedup::{Claim, Dedup, ledger};
use crate::error::BridgeError;
use crate::receipt::Receipt;

/// The verdict of a first attempt, shared with the copies that waited.
pub(crate) type Verdict = Result<Receipt, Arc<BridgeError>>;

/// Kafka's delivery report on a lead's record: the future that ends in its
/// verdict. Named once, here, so that it has one name in this part (the
/// publisher's report future is one).
pub(crate) trait DeliveryReport: Future<Output = Verdict> + Unpin + Send + 'static {}

impl<T> DeliveryReport for T where T: Future<Output = Verdict> + Unpin + Send + 'static {}

/// What to do with a delivery, given its claim.
pub(crate) enum Admission {
    /// Confirmed before with the same body: answer `OK`, publish nothing.
    Seen,
    /// The same event is being published right now: wait for its verdict.
    InFlight(Arc<InFlight>),
    /// First copy (or a conflicting body): publish it, then settle the
    /// lead with Kafka's verdict.
    Lead(Lead),
}

/// An event being published by its first copy: where later copies wait
/// for that copy's verdict.
#[derive(Default)]
pub(crate) struct InFlight {
    verdict: std::sync::OnceLock<Verdict>,
    notify: tokio::sync::Notify,
}

impl InFlight {
    /// The first copy's verdict, once it has one. Every lead is settled
    /// with one, even when dropped (see [`Lead`]).
    pub(crate) async fn verdict(&self) -> Verdict {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = self.verdict.get() {
                return v.clone();
            }
            notified.await;
        }
    }

    /// Hands the lead's verdict to every copy waiting, and to any copy
    /// that asks later.
    fn share(&self, verdict: Verdict) {
        let _ = self.verdict.set(verdict);
        self.notify.notify_waiters();
    }
}

/// The first copy's duty: settle how publishing ended. Dropped unsettled
/// (the request was abandoned before its record was handed to Kafka), it
/// tells the waiting copies to retry.
pub(crate) struct Lead {
    dedup: Arc<Dedup>,
    claim: Claim,
    done: bool,
}

impl Lead {
    /// Built only by [`Dedup::admit`], after it entered `claim` in the
    /// in-flight table: a lead dropped unsettled takes it out again.
    pub(super) fn new(dedup: Arc<Dedup>, claim: Claim) -> Lead {
        Lead {
            dedup,
            claim,
            done: false,
        }
    }

    /// What writes this event's ledger line into the buffer of the Kafka
    /// transaction that carries its record (no line of its own is
    /// allocated); `None` without a ledger, or when the ledger writer
    /// records it after confirmation instead.
    pub(crate) fn ledger_line<'a>(
        &self,
        id: &'a str,
        topic: &'a str,
    ) -> Option<impl Fn(&mut Vec<u8>) + use<'a>> {
        if !self
            .dedup
            .ledger
            .as_ref()
            .is_some_and(|l| l.in_transaction())
        {
            return None;
        }
        let claim = self.claim;
        Some(move |out: &mut Vec<u8>| ledger::line_of(out, claim, id, topic, None))
    }

    /// Waits for Kafka's verdict on this lead's write (its delivery
    /// `report`), at most until `deadline` (the request's timer), and
    /// settles the lead with it: on success the identity is remembered,
    /// then (after the answer may have gone out) recorded in the ledger,
    /// where `id` and `topic` are what the ledger line says.
    ///
    /// The verdict is awaited right here, so a delivery costs one wake-up
    /// when Kafka confirms in time. When the deadline passes first, or the
    /// request is dropped (the client hung up), the report is handed to a
    /// task of its own that settles the same way: a write Kafka confirms
    /// late is still remembered and recorded, and the retry POPBiLL sends
    /// after our 503 is recognised. Shutdown waits for every report still
    /// awaited, here or in such a task, before the ledger's last batch.
    pub(crate) async fn confirm<R: DeliveryReport>(
        self,
        report: R,
        id: &str,
        topic: &Arc<str>,
        deadline: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Verdict {
        let ledger = self.dedup.ledger.as_ref();
        let mut awaiting = Awaiting(Some(Confirming {
            // Tells shutdown a ledger entry may still come from this report.
            expected: ledger.map(ledger::Ledger::expect),
            id: ledger.map(|_| id.to_owned()),
            topic: topic.clone(),
            lead: self,
            report,
        }));
        let Some(c) = awaiting.0.as_mut() else {
            unreachable!("set above")
        };
        tokio::select! {
            biased;
            verdict = &mut c.report => {
                if let Some(c) = awaiting.0.take() {
                    c.settle(verdict.clone());
                }
                verdict
            }
            // `awaiting` hands the report to a task as it drops.
            () = deadline => Err(Arc::new(BridgeError::PublishTimeout)),
        }
    }

    /// Settles the lead with a verdict already known. On success the
    /// identity is remembered *before* it leaves the in-flight table, so
    /// no copy can slip between the two.
    pub(crate) fn settle(mut self, verdict: Verdict) {
        self.settle_in_place(verdict);
    }

    /// [`Lead::settle`] on a lead still in place: also how a lead dropped
    /// unsettled ends.
    fn settle_in_place(&mut self, verdict: Verdict) {
        self.done = true;
        if self.dedup.enabled {
            let (i, mut st) = self.dedup.lock(self.claim);
            // Confirmed now: the time the memory keeps it from.
            let evicted = verdict
                .is_ok()
                .then(|| st.memory.insert(self.claim, unix_secs(SystemTime::now())));
            let copies = st.inflight.remove(&self.claim).flatten();
            // A failure leaves the memory as it was: no gauges to move.
            if evicted.is_some() {
                self.dedup.note_sizes(i, &st.memory);
            }
            drop(st);
            if let Some(evicted) = evicted {
                self.dedup.set_gauges(evicted);
            }
            if let Some(copies) = copies {
                copies.share(verdict);
            }
        }
    }
}

/// A lead whose delivery report is awaited.
struct Confirming<R> {
    lead: Lead,
    report: R,
    /// The ledger line's id and topic (the id only with a ledger).
    id: Option<String>,
    topic: Arc<str>,
    expected: Option<ledger::Expected>,
}

impl<R: DeliveryReport> Confirming<R> {
    /// The task a report is handed to when its request stopped waiting.
    async fn settle_when_reported(mut self) {
        let verdict = (&mut self.report).await;
        self.settle(verdict);
    }

    /// Settles the lead, then (confirmed) queues its ledger entry; only
    /// then tells shutdown this report was handled.
    fn settle(self, verdict: Verdict) {
        let Confirming {
            lead,
            id,
            topic,
            expected,
            report: _,
        } = self;
        let (dedup, claim) = (lead.dedup.clone(), lead.claim);
        lead.settle(verdict.clone());
        if let (Ok(receipt), Some(ledger), Some(id)) = (verdict, &dedup.ledger, id) {
            ledger.record(ledger::Entry {
                claim,
                id,
                topic,
                receipt,
            });
        }
        drop(expected);
    }
}

/// Holds a [`Confirming`] while the request awaits it; dropped with it
/// still inside (deadline passed, request dropped), hands it to a task.
struct Awaiting<R: DeliveryReport>(Option<Confirming<R>>);

impl<R: DeliveryReport> Drop for Awaiting<R> {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            // Outside a runtime (it is gone: the process is ending) the
            // lead is settled as abandoned as it drops.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(c.settle_when_reported());
            }
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        if !self.done {
            self.settle_in_place(Err(Arc::new(BridgeError::Abandoned)));
        }
    }
}

#[cfg(test)]
mod tests;
