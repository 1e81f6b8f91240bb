//! A sealed writer's records sent out at once, and their reports let go
//! of, before the commit: what keeps a commit from waiting out
//! `linger.ms` or rust-rdkafka's 100 ms flush poll.

use super::*;

use std::time::Duration;

impl GroupCommit {
    /// Sends the sealed writer's records that wait out `linger.ms`, and
    /// waits (in a blocking thread, at most the transaction timeout) until
    /// their reports are out. librdkafka's own `rd_kafka_flush`, called
    /// directly, treats the linger as zero while it runs and waits on a
    /// condition variable; rust-rdkafka's `flush` polls in 100 ms steps
    /// instead (see `wait_for_reports_released`). No new record reaches a
    /// sealed writer, so this is the group's last batch.
    pub(super) async fn send_lingering(&self, writer: &Arc<Writer>) {
        let (w, timeout) = (writer.clone(), self.timeout);
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // A failed blocking task only loses the early send: the reports
        // are awaited next either way.
        let _ = tokio::task::spawn_blocking(move || {
            // SAFETY: the pointer is the producer's own, alive while `w`
            // holds it; rd_kafka_flush may be called from any thread. Its
            // result (timed out) says nothing the reports do not.
            unsafe { rdkafka::bindings::rd_kafka_flush(w.producer.client().native_ptr(), millis) };
        })
        .await;
    }
}

/// At most this long for librdkafka to let go of reports already read.
const RELEASE_WAIT: Duration = Duration::from_millis(50);

/// Waits until librdkafka counts none of the writer's messages as
/// outstanding. Every report was read before the commit is asked for, but
/// librdkafka counts a message until the producer's thread has finished
/// with its report, a moment later; rust-rdkafka's `commit_transaction`
/// first flushes, and a flush that finds anything outstanding polls for a
/// whole 100 ms. Measured: one commit in five took 100 ms more, the p99 of
/// every delivery (docs/performance.md). No new record reaches a sealed
/// writer, so once zero the count stays zero; should it not get there, the
/// commit goes on and is only slower.
pub(super) fn wait_for_reports_released(producer: &FutureProducer<KafkaContext>) {
    let until = std::time::Instant::now() + RELEASE_WAIT;
    while producer.in_flight_count() > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_micros(100));
    }
}
