//! Where log lines go: a buffer that a thread of its own writes to stdout.
//!
//! A delivery's line used to be one `write(2)` on the runtime worker that
//! answered it: at 10,000 deliveries a second that was 10,000 system calls,
//! each holding a worker. Here a line is appended to a shared buffer under
//! a lock held for a copy, and the writer thread takes the whole buffer
//! at most once per `log.flush_interval`: one `write(2)` for hundreds of
//! lines, and one wake-up per interval rather than one per line (a
//! channel to a writer thread, tried first, woke it for every line and
//! saved nothing: docs/performance.md).
//!
//! - A line never waits for stdout. When the buffer holds
//!   [`Output::MAX_PENDING_BYTES`] (stdout stuck: a full pipe, a stalled
//!   log collector), new lines are dropped and counted
//!   (`popbill_bridge_log_lines_dropped_total`) instead of stopping
//!   deliveries.
//! - Warnings and errors wake the writer at once: the line that explains
//!   a failure is not left in memory for an interval.
//! - Lines keep their order: every line of the process, the deliveries'
//!   and tracing's, goes through the one buffer.
//! - [`Output::flush`] writes what is pending; `main` calls it before it
//!   returns, and the panic hook before a panic's message. A process
//!   killed outright loses at most one interval of lines.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The shared buffer and its writer's state.
pub(crate) struct Output {
    pending: Mutex<Vec<u8>>,
    /// Signalled when the writer should look at `pending` again.
    wake: Condvar,
    /// The writer waits on `wake` with an empty buffer: the next line
    /// must notify it (notifying costs a system call, so only then).
    writer_idle: AtomicBool,
    /// A warning or error is pending: write without waiting the interval.
    urgent: AtomicBool,
    dropped: AtomicU64,
    /// stdout, or a test's sink. Held by whoever writes: the writer
    /// thread, or [`Output::flush`].
    sink: Mutex<Box<dyn Write + Send>>,
    interval: Duration,
}

impl Output {
    /// The most a stuck stdout may keep in memory before lines are dropped.
    pub(crate) const MAX_PENDING_BYTES: usize = 8 << 20;

    /// How long [`Output::flush`] waits for a write already under way.
    pub(crate) const FLUSH_WAIT: Duration = Duration::from_secs(1);

    pub(crate) fn new(sink: Box<dyn Write + Send>, interval: Duration) -> Output {
        Output {
            pending: Mutex::new(Vec::with_capacity(64 << 10)),
            wake: Condvar::new(),
            writer_idle: AtomicBool::new(false),
            urgent: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            sink: Mutex::new(sink),
            interval,
        }
    }

    /// Starts the writer thread of an output that lives as long as the
    /// process.
    pub(crate) fn start(output: &'static Output) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || output.write_forever())
            .map(|_| ())
    }

    /// Appends one or more whole lines. `urgent`: a warning or an error.
    pub(crate) fn append(&self, lines: &[u8], urgent: bool) {
        let mut pending = lock(&self.pending);
        if pending.len() + lines.len() > Self::MAX_PENDING_BYTES {
            drop(pending);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.extend_from_slice(lines);
        // Under the lock, so the writer, which checks both under it before
        // it waits, cannot miss them.
        if urgent {
            self.urgent.store(true, Ordering::Relaxed);
        }
        let notify = urgent || self.writer_idle.swap(false, Ordering::Relaxed);
        drop(pending);
        if notify {
            self.wake.notify_one();
        }
    }

    /// Lines dropped because stdout did not keep up (or failed).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes everything pending now, from the calling thread. Waits at
    /// most [`Output::FLUSH_WAIT`] for the writer thread to finish a write
    /// of its own: a stdout stuck in that write must not hold up the exit
    /// (or a panic); what is pending is then counted as dropped.
    pub(crate) fn flush(&self) {
        let waited = std::time::Instant::now();
        let mut sink = loop {
            match self.sink.try_lock() {
                Ok(s) => break s,
                Err(std::sync::TryLockError::Poisoned(e)) => break e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if waited.elapsed() < Self::FLUSH_WAIT => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    self.lost(&std::mem::take(&mut *lock(&self.pending)));
                    return;
                }
            }
        };
        let lines = std::mem::take(&mut *lock(&self.pending));
        self.write_out(&mut sink, &lines);
    }

    fn write_forever(&self) {
        let mut spare = Vec::with_capacity(64 << 10);
        loop {
            let mut pending = lock(&self.pending);
            while pending.is_empty() {
                self.writer_idle.store(true, Ordering::Relaxed);
                pending = self.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            // Let the lines of one interval gather, unless one is urgent.
            if !self.urgent.swap(false, Ordering::Relaxed) {
                pending = self
                    .wake
                    .wait_timeout_while(pending, self.interval, |_| {
                        !self.urgent.load(Ordering::Relaxed)
                    })
                    .map(|(p, _)| p)
                    .unwrap_or_else(|e| e.into_inner().0);
                self.urgent.store(false, Ordering::Relaxed);
            }
            // The sink first, then the lines, as `flush` takes them: lines
            // taken here are written before any a flush takes after them.
            drop(pending);
            let mut sink = lock(&self.sink);
            std::mem::swap(&mut *lock(&self.pending), &mut spare);
            self.write_out(&mut sink, &spare);
            drop(sink);
            spare.clear();
        }
    }

    /// Counts the lines of `lines` as dropped.
    fn lost(&self, lines: &[u8]) {
        let count = lines.iter().filter(|&&b| b == b'\n').count();
        self.dropped.fetch_add(count as u64, Ordering::Relaxed);
    }

    fn write_out(&self, sink: &mut Box<dyn Write + Send>, lines: &[u8]) {
        if lines.is_empty() {
            return;
        }
        if sink.write_all(lines).and_then(|()| sink.flush()).is_err() {
            // Nowhere to say it but the count: stdout is what failed.
            self.lost(lines);
        }
    }
}

/// A poisoned lock only means a thread panicked while appending; the bytes
/// are still whole lines or none.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// tracing-subscriber's writer: each event it formats arrives in one
/// `write_all`, appended as it comes.
#[derive(Clone, Copy)]
pub(crate) struct TracingWriter {
    output: &'static Output,
    urgent: bool,
}

impl Write for TracingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.append(buf, self.urgent);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hands tracing-subscriber a writer per event, urgent for warnings and
/// errors.
#[derive(Clone, Copy)]
pub(crate) struct MakeTracingWriter(pub(crate) &'static Output);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeTracingWriter {
    type Writer = TracingWriter;

    fn make_writer(&'a self) -> TracingWriter {
        TracingWriter {
            output: self.0,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> TracingWriter {
        TracingWriter {
            output: self.0,
            urgent: *meta.level() <= tracing::Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests;
