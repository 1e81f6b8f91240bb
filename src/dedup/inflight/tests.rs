use super::*;
use crate::dedup::tests::{c, dedup, receipt};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test]
async fn copies_in_flight_follow_the_lead_and_share_its_verdict() {
    let d = dedup(true);
    let Admission::Lead(lead) = d.admit(c(7), "m") else {
        panic!("lead")
    };
    let mut followers = Vec::new();
    for _ in 0..5 {
        match d.admit(c(7), "m") {
            Admission::InFlight(copies) => {
                followers.push(tokio::spawn(async move { copies.verdict().await }))
            }
            _ => panic!("copies follow"),
        }
    }
    tokio::task::yield_now().await;
    lead.settle(Ok(receipt()));
    for f in followers {
        assert!(f.await.expect("joined").is_ok());
    }
    assert!(matches!(d.admit(c(7), "m"), Admission::Seen));
}

#[tokio::test]
async fn an_abandoned_lead_releases_its_followers_with_a_failure() {
    let d = dedup(true);
    let Admission::Lead(lead) = d.admit(c(9), "m") else {
        panic!("lead")
    };
    let Admission::InFlight(copies) = d.admit(c(9), "m") else {
        panic!("follow")
    };
    drop(lead);
    assert!(copies.verdict().await.is_err());
    assert!(
        matches!(d.admit(c(9), "m"), Admission::Lead(_)),
        "and the next copy leads"
    );
}

/// A delivery report as a test drives it.
struct Report(tokio::sync::oneshot::Receiver<Verdict>);

impl Future for Report {
    type Output = Verdict;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Verdict> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(Arc::new(BridgeError::Abandoned))))
    }
}

async fn eventually_seen(d: &Arc<Dedup>, claim: Claim) {
    for _ in 0..500 {
        if matches!(d.admit(claim, "m"), Admission::Seen) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("a confirmation that came late was not remembered");
}

#[tokio::test]
async fn a_report_after_the_deadline_is_still_remembered() {
    let d = dedup(true);
    let Admission::Lead(lead) = d.admit(c(3), "m") else {
        panic!("lead")
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let topic: Arc<str> = "t".into();
    let deadline = tokio::time::sleep_until(Instant::now() + Duration::from_millis(20));
    tokio::pin!(deadline);
    let v = lead.confirm(Report(rx), "m", &topic, deadline).await;
    assert!(matches!(v, Err(e) if matches!(*e, BridgeError::PublishTimeout)));
    assert!(
        matches!(d.admit(c(3), "m"), Admission::InFlight(_)),
        "still in flight after the deadline"
    );
    let _ = tx.send(Ok(receipt()));
    eventually_seen(&d, c(3)).await;
}

#[tokio::test]
async fn a_report_after_the_request_was_dropped_is_still_remembered() {
    let d = dedup(true);
    let Admission::Lead(lead) = d.admit(c(4), "m") else {
        panic!("lead")
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let topic: Arc<str> = "t".into();
    let deadline = Instant::now() + Duration::from_secs(60);
    let request = tokio::spawn(async move {
        let deadline = tokio::time::sleep_until(deadline);
        tokio::pin!(deadline);
        let _ = lead.confirm(Report(rx), "m", &topic, deadline).await;
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    request.abort(); // the client hung up
    let _ = request.await;
    let _ = tx.send(Ok(receipt()));
    eventually_seen(&d, c(4)).await;
}
