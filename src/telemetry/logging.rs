//! Log output: readable text for people, JSON for log pipelines. `RUST_LOG`
//! overrides the configured level. librdkafka's own lines reach the log
//! through the bridge's client context ([`crate::kafka::client::KafkaContext`]),
//! which passes its trouble lines through a [`Throttle`].
//!
//! Every line goes through one buffer that a thread of its own writes out
//! ([`output`]); the line each delivery gets is formatted without tracing's
//! machinery ([`line`], [`delivery_line`]), as tracing would write it.

mod line;
mod output;

use serde::{Deserialize, Serialize};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use tracing::Level;
use tracing_subscriber::EnvFilter;

pub(crate) use self::line::Fields;
use self::output::{MakeTracingWriter, Output};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `popbill_bridge=debug,rdkafka=warn`.
    /// `RUST_LOG` wins when set.
    pub level: String,
    /// How long info lines may wait in memory to be written together (one
    /// write for all of them instead of one each). Warnings and errors
    /// are written at once. `0s`: every line at once.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
            flush_interval: Duration::from_millis(20),
        }
    }
}

impl LogConfig {
    /// The longest `flush_interval`: lines later than this read as a hang.
    const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

    /// Problems with the section, one line each.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.flush_interval > Self::MAX_FLUSH_INTERVAL {
            problems.push(format!(
                "log.flush_interval = {} is longer than {}: lines would come too late to follow \
                 the bridge by; use 20ms (the default), or 0s to write every line at once",
                humantime::format_duration(self.flush_interval),
                humantime::format_duration(Self::MAX_FLUSH_INTERVAL),
            ));
        }
        problems
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What [`init`] installed: set once, read by every delivery line.
struct Installed {
    output: &'static Output,
    /// The format delivery lines are written in by [`line`], when they are
    /// (see [`direct_format`]).
    direct: Option<LogFormat>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

pub fn init(cfg: &LogConfig) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG {v:?}: {e}"))?
        }
        _ => {
            EnvFilter::try_new(&cfg.level).map_err(|e| format!("log.level {:?}: {e}", cfg.level))?
        }
    };
    if let Some(problem) = cfg.check().into_iter().next() {
        return Err(problem);
    }
    // Colours only for a terminal: escape codes in a log file are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Made once for the process, and never freed: the writer thread and
    // the panic hook hold it to the end.
    let output: &'static Output = Box::leak(Box::new(Output::new(
        Box::new(std::io::stdout()),
        cfg.flush_interval,
    )));
    Output::start(output).map_err(|e| format!("cannot start the log writer thread: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(MakeTracingWriter(output));
    let result = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))?;
    let _ = INSTALLED.set(Installed {
        output,
        direct: direct_format(cfg.format, ansi),
    });
    // A panic's message (stderr) comes after the lines that led to it.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        output.flush();
        previous(info);
    }));
    Ok(())
}

/// The format delivery lines are written in directly, if any: always, but
/// for text on a terminal, where tracing's colours serve people better
/// (JSON has none).
fn direct_format(format: LogFormat, ansi: bool) -> Option<LogFormat> {
    match format {
        LogFormat::Text if ansi => None,
        f => Some(f),
    }
}

/// Writes every pending line now: before the process exits.
pub fn flush() {
    if let Some(installed) = INSTALLED.get() {
        installed.output.flush();
    }
}

/// Lines dropped because stdout did not take them in time (or failed).
pub(crate) fn lines_dropped() -> u64 {
    INSTALLED.get().map_or(0, |i| i.output.dropped())
}

/// The one line a delivery gets (target `popbill_bridge::delivery`), at
/// `level`, when the filter lets it through: the message, then what
/// `fields` writes. Formatted here rather than by tracing, which cost a
/// delivery more than the rest of its logging and counting together
/// (docs/performance.md); it reads the same either way.
pub(crate) fn delivery_line(
    level: Level,
    message: &'static str,
    fields: impl FnOnce(&mut Fields<'_>),
) {
    const TARGET: &str = "popbill_bridge::delivery";
    let enabled = match level {
        Level::ERROR => tracing::enabled!(target: "popbill_bridge::delivery", Level::ERROR),
        Level::WARN => tracing::enabled!(target: "popbill_bridge::delivery", Level::WARN),
        Level::INFO => tracing::enabled!(target: "popbill_bridge::delivery", Level::INFO),
        Level::DEBUG => tracing::enabled!(target: "popbill_bridge::delivery", Level::DEBUG),
        Level::TRACE => tracing::enabled!(target: "popbill_bridge::delivery", Level::TRACE),
    };
    if !enabled {
        return;
    }
    if let Some(&Installed {
        output,
        direct: Some(format),
    }) = INSTALLED.get()
    {
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> =
                std::cell::RefCell::new(Vec::with_capacity(512));
        }
        LINE.with(|cell| {
            // A line written while this thread's buffer is in use (a field
            // that logs as it is formatted) gets a buffer of its own.
            let mut fresh = Vec::new();
            let mut held = cell.try_borrow_mut();
            let buf = match held.as_deref_mut() {
                Ok(b) => b,
                Err(_) => &mut fresh,
            };
            buf.clear();
            line::write(
                buf,
                format,
                SystemTime::now(),
                level,
                TARGET,
                message,
                fields,
            );
            output.append(buf, level <= Level::WARN);
        });
        return;
    }
    // Through tracing: the fields become part of the message, and the
    // text line reads exactly as the direct one.
    let fields = line::text_fields(fields);
    match level {
        Level::ERROR => tracing::error!(target: "popbill_bridge::delivery", "{message}{fields}"),
        Level::WARN => tracing::warn!(target: "popbill_bridge::delivery", "{message}{fields}"),
        Level::INFO => tracing::info!(target: "popbill_bridge::delivery", "{message}{fields}"),
        Level::DEBUG => tracing::debug!(target: "popbill_bridge::delivery", "{message}{fields}"),
        Level::TRACE => tracing::trace!(target: "popbill_bridge::delivery", "{message}{fields}"),
    }
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
