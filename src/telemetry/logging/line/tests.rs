use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::Level;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

use super::{Fields, timestamp, write};
use crate::telemetry::captured_log::Buffer;
use crate::telemetry::logging::LogFormat;

/// tracing-subscriber's clock, stopped at `at` and written as
/// [`timestamp`] writes it (checked against humantime on its own, below).
struct StoppedClock(SystemTime);

impl FormatTime for StoppedClock {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        w.write_str(&humantime::format_rfc3339_micros(self.0).to_string())
    }
}

/// What tracing-subscriber writes for one event of the delivery target.
fn by_tracing(format: LogFormat, at: SystemTime, emit: impl FnOnce()) -> String {
    let sink = Buffer::default();
    let writer = sink.clone();
    let builder = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(Level::TRACE)
        .with_timer(StoppedClock(at));
    match format {
        LogFormat::Text => tracing::subscriber::with_default(builder.finish(), emit),
        LogFormat::Json => {
            tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), emit)
        }
    }
    sink.text()
}

fn by_line(
    format: LogFormat,
    at: SystemTime,
    level: Level,
    message: &str,
    fields: impl FnOnce(&mut Fields<'_>),
) -> String {
    let mut buf = Vec::new();
    write(
        &mut buf,
        format,
        at,
        level,
        "popbill_bridge::delivery",
        message,
        fields,
    );
    String::from_utf8(buf).expect("utf-8")
}

/// Strings a sender controls, and numbers as the bridge's lines hold them.
const TEXTS: &[&str] = &[
    "025111409301-7c1d2e3f4a5b6c7d8e9f001",
    "",
    "with \"quotes\" and a \\ backslash",
    "line\nbreak\ttab\r and \u{1b}[31m escape",
    "세금계산서 발행",
    "nul \0 and del \u{7f} and \u{200b} zero width",
];
const MICROS: &[u64] = &[0, 1, 18, 2_632, 3_000, 17_500, 1_234_567, 10_000_000];

#[test]
fn a_delivery_line_is_byte_for_byte_what_tracing_subscriber_writes() {
    let at = UNIX_EPOCH + Duration::new(1_796_318_046, 706_681_000);
    for format in [LogFormat::Text, LogFormat::Json] {
        for (i, text) in TEXTS.iter().enumerate() {
            let micros = MICROS[i % MICROS.len()];
            let ms = micros as f64 / 1e3;
            let (partition, offset, waited) = (i as i32, -1 + 1_000_000_007 * i as i64, i % 2 == 0);
            let expected = by_tracing(format, at, || {
                tracing::info!(
                    target: "popbill_bridge::delivery",
                    outcome = "acknowledged",
                    ce_id = *text,
                    partition,
                    offset,
                    waited,
                    status = 503u16,
                    error = %format_args!("Kafka said {text:?}"),
                    latency_ms = ms,
                    "delivery acknowledged"
                )
            });
            let written = by_line(format, at, Level::INFO, "delivery acknowledged", |f| {
                f.str("outcome", "acknowledged")
                    .str("ce_id", text)
                    .i32("partition", partition)
                    .i64("offset", offset)
                    .bool("waited", waited)
                    .u64("status", 503)
                    .display("error", &format_args!("Kafka said {text:?}"))
                    .millis("latency_ms", micros);
            });
            assert_eq!(written, expected, "{format:?}, {text:?}");
        }
    }
}

#[test]
fn a_warning_line_pads_its_level_as_tracing_subscriber_does() {
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for format in [LogFormat::Text, LogFormat::Json] {
        let expected = by_tracing(
            format,
            at,
            || tracing::warn!(target: "popbill_bridge::delivery", mid = "m", "delivery rejected"),
        );
        let written = by_line(format, at, Level::WARN, "delivery rejected", |f| {
            f.str("mid", "m");
        });
        assert_eq!(written, expected);
    }
}

#[test]
fn every_latency_in_a_line_reads_as_tracing_would_write_it() {
    let at = UNIX_EPOCH;
    // Every microsecond value of the first 20 ms, then a coarser sweep up
    // to an hour: what a latency can be.
    let values: Vec<u64> = (0..20_000u64)
        .chain((20_000..3_600_000_000).step_by(99_991))
        .collect();
    for format in [LogFormat::Text, LogFormat::Json] {
        let expected = by_tracing(format, at, || {
            for &micros in &values {
                let ms = micros as f64 / 1e3;
                tracing::info!(target: "popbill_bridge::delivery", latency_ms = ms, "m");
            }
        });
        let mut written = String::new();
        for &micros in &values {
            written += &by_line(format, at, Level::INFO, "m", |f| {
                f.millis("latency_ms", micros);
            });
        }
        assert_eq!(written, expected, "{format:?}");
    }
}

#[test]
fn the_timestamp_is_rfc3339_in_utc_with_microseconds() {
    let mut seconds: Vec<u64> = vec![
        0,
        951_782_400,   // 2000-02-29
        1_796_318_046, // 2026-12-03
        4_107_542_399, // 2100-02-28T23:59:59
        253_402_300_799,
    ];
    // A pseudo-random sweep (an LCG) over the years up to 9999.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..5_000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        seconds.push(x % 253_402_300_800);
    }
    for (i, s) in seconds.into_iter().enumerate() {
        let at = UNIX_EPOCH + Duration::new(s, (i as u64 * 7_919_011 % 1_000_000_000) as u32);
        let mut buf = Vec::new();
        timestamp(&mut buf, at);
        assert_eq!(
            String::from_utf8(buf).expect("ascii"),
            humantime::format_rfc3339_micros(at).to_string(),
            "{s} s"
        );
    }
}

#[test]
fn a_line_in_the_same_second_as_the_last_keeps_the_right_microseconds() {
    let base = UNIX_EPOCH + Duration::from_secs(1_796_318_046);
    for micros in [0u64, 1, 999_999, 500_000, 1] {
        let at = base + Duration::from_micros(micros);
        let mut buf = Vec::new();
        timestamp(&mut buf, at);
        assert_eq!(
            String::from_utf8(buf).expect("ascii"),
            humantime::format_rfc3339_micros(at).to_string()
        );
    }
}
