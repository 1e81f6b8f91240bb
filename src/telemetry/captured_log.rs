//! Tests' view of the log: what the lines written on this thread say.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// The log lines written on this thread while it is alive (and, in a
/// current-thread runtime, by every task of that runtime), as text.
pub(crate) struct CapturedLog {
    buffer: Buffer,
    _default: tracing::subscriber::DefaultGuard,
}

impl CapturedLog {
    pub(crate) fn start() -> CapturedLog {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        CapturedLog {
            buffer,
            _default: tracing::subscriber::set_default(subscriber),
        }
    }

    pub(crate) fn text(&self) -> String {
        self.buffer.text()
    }
}

/// Bytes written through any of its clones, for a test to read.
#[derive(Clone, Default)]
pub(crate) struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// What was written, as text.
    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
