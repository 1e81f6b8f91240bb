//! Log output: readable text for people, JSON for log pipelines. `RUST_LOG`
//! overrides the configured level. librdkafka's own lines reach the log
//! through the bridge's client context ([`crate::kafka::client::KafkaContext`]),
//! which passes its trouble lines through a [`Throttle`].

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `popbill_bridge=debug,rdkafka=warn`.
    /// `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init(cfg: &LogConfig) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG {v:?}: {e}"))?
        }
        _ => {
            EnvFilter::try_new(&cfg.level).map_err(|e| format!("log.level {:?}: {e}", cfg.level))?
        }
    };
    // Colours only for a terminal: escape codes in a log file are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let result = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

/// Keeps a repeating problem from flooding the log. While Kafka is
/// unreachable librdkafka reports the same trouble about 30 times a second
/// from every client; a log that scrolls that fast hides everything else
/// and costs money in a log pipeline.
///
/// A *bout* starts with the first line, which is logged. Later lines are
/// counted and, at most once per `every`, one of them is logged with the
/// count of those suppressed since. The bout ends when the owner says the
/// trouble is over ([`Throttle::clear`]); the count left is reported then.
///
/// The clock is a parameter so tests can drive it.
pub(crate) struct Throttle {
    every: Duration,
    bout: Mutex<Option<Bout>>,
}

struct Bout {
    last_said: Instant,
    suppressed: u64,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Say {
    /// The first line of a bout: log it.
    First,
    /// Log it, with how many lines were suppressed since the last one.
    Summary { suppressed: u64 },
    /// Count it, log nothing.
    Quiet,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            bout: Mutex::new(None),
        }
    }

    pub fn every(&self) -> Duration {
        self.every
    }

    /// One more line of trouble at `now`.
    pub(crate) fn hit(&self, now: Instant) -> Say {
        // A poisoned lock only means another thread panicked mid-count;
        // the count is still usable.
        let mut bout = self.bout.lock().unwrap_or_else(|e| e.into_inner());
        match bout.as_mut() {
            None => {
                *bout = Some(Bout {
                    last_said: now,
                    suppressed: 0,
                });
                Say::First
            }
            Some(b) if now.saturating_duration_since(b.last_said) >= self.every => {
                let suppressed = std::mem::take(&mut b.suppressed);
                b.last_said = now;
                Say::Summary { suppressed }
            }
            Some(b) => {
                b.suppressed += 1;
                Say::Quiet
            }
        }
    }

    /// The trouble is over. Returns the lines suppressed since the last
    /// one logged, when there was a bout.
    pub fn clear(&self) -> Option<u64> {
        let mut bout = self.bout.lock().unwrap_or_else(|e| e.into_inner());
        bout.take().map(|b| b.suppressed)
    }
}

/// A problem that loops re-checking every few seconds say once per change:
/// when it appears or changes, not every round.
#[derive(Default)]
pub(crate) struct LastSaid(Mutex<Option<String>>);

impl LastSaid {
    /// What was kept last.
    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|s| s.clone())
    }

    /// Keeps `now`; gives it back when it is a problem that was not the
    /// one kept before (the caller logs it). Cleared or unchanged: none.
    pub(crate) fn update(&self, now: Option<String>) -> Option<String> {
        let mut said = self.0.lock().ok()?;
        if *said == now {
            return None;
        }
        said.clone_from(&now);
        now
    }
}

#[cfg(test)]
mod tests;
