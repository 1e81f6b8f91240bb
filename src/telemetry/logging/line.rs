//! A log line written without tracing's formatting machinery, byte for
//! byte as tracing-subscriber writes it (text, or JSON with the event
//! flattened; the test beside this file holds the two equal).
//!
//! Every delivery gets one line, so its cost is the bridge's per-delivery
//! cost: tracing-subscriber spent ~14k instructions on it (field visitors,
//! `Debug` formatting of every string, the clock formatted in full), this
//! a fraction — fields written straight into a reused buffer, plain strings copied
//! whole, the timestamp's date and time of day formatted once a second.
//!
//! Writing into a `Vec` cannot fail, so the results of `write!` are
//! ignored.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::Level;

use super::LogFormat;

/// The fields of one line, written in the line's format.
pub(crate) struct Fields<'b> {
    buf: &'b mut Vec<u8>,
    format: LogFormat,
}

impl Fields<'_> {
    pub(crate) fn str(&mut self, name: &str, value: &str) -> &mut Self {
        self.name(name);
        match self.format {
            LogFormat::Text => debug_str(self.buf, value),
            LogFormat::Json => json_str(self.buf, value),
        }
        self
    }

    pub(crate) fn u64(&mut self, name: &str, value: u64) -> &mut Self {
        self.name(name);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    pub(crate) fn i64(&mut self, name: &str, value: i64) -> &mut Self {
        self.name(name);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    pub(crate) fn i32(&mut self, name: &str, value: i32) -> &mut Self {
        self.i64(name, i64::from(value))
    }

    /// A value written as `Display` writes it: bare in text (tracing's
    /// `%value`), a string in JSON.
    pub(crate) fn display(&mut self, name: &str, value: &dyn std::fmt::Display) -> &mut Self {
        self.name(name);
        match self.format {
            LogFormat::Text => {
                let _ = write!(self.buf, "{value}");
            }
            LogFormat::Json => json_str(self.buf, &value.to_string()),
        }
        self
    }

    pub(crate) fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.name(name);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// A duration of `micros` microseconds in milliseconds, written as
    /// tracing writes the number `micros as f64 / 1e3` (whole digits, then
    /// up to three decimals without trailing zeros, at least one), without
    /// float formatting: a latency goes into every delivery's line.
    pub(crate) fn millis(&mut self, name: &str, micros: u64) -> &mut Self {
        self.name(name);
        let mut whole = itoa::Buffer::new();
        self.buf
            .extend_from_slice(whole.format(micros / 1000).as_bytes());
        let frac = (micros % 1000) as u32;
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let keep = if frac.is_multiple_of(100) {
            1
        } else if frac.is_multiple_of(10) {
            2
        } else {
            3
        };
        self.buf.push(b'.');
        self.buf.extend_from_slice(&digits[..keep]);
        self
    }

    fn name(&mut self, name: &str) {
        match self.format {
            LogFormat::Text => {
                self.buf.push(b' ');
                self.buf.extend_from_slice(name.as_bytes());
                self.buf.push(b'=');
            }
            LogFormat::Json => {
                self.buf.push(b',');
                json_str(self.buf, name);
                self.buf.push(b':');
            }
        }
    }
}

/// Writes one whole line into `buf`: time, level, target, message, the
/// fields `fields` adds, and the newline.
pub(crate) fn write(
    buf: &mut Vec<u8>,
    format: LogFormat,
    now: SystemTime,
    level: Level,
    target: &str,
    message: &str,
    fields: impl FnOnce(&mut Fields<'_>),
) {
    match format {
        LogFormat::Text => {
            timestamp(buf, now);
            buf.push(b' ');
            buf.extend_from_slice(padded_level(level).as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(target.as_bytes());
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(message.as_bytes());
            fields(&mut Fields { buf, format });
        }
        LogFormat::Json => {
            buf.extend_from_slice(b"{\"timestamp\":\"");
            timestamp(buf, now);
            buf.extend_from_slice(b"\",\"level\":\"");
            buf.extend_from_slice(level.as_str().as_bytes());
            buf.extend_from_slice(b"\",\"message\":");
            json_str(buf, message);
            fields(&mut Fields { buf, format });
            buf.extend_from_slice(b",\"target\":");
            json_str(buf, target);
            buf.push(b'}');
        }
    }
    buf.push(b'\n');
}

/// Only the fields, as the text format writes them after the message: for
/// a line that goes through tracing after all (a terminal's colours, or
/// no logger of the bridge's, as in tests), where they become part of the
/// message and read the same.
pub(crate) fn text_fields(fields: impl FnOnce(&mut Fields<'_>)) -> String {
    let mut buf = Vec::with_capacity(256);
    fields(&mut Fields {
        buf: &mut buf,
        format: LogFormat::Text,
    });
    // Every byte written is from a `&str` or ASCII.
    String::from_utf8(buf).unwrap_or_default()
}

fn padded_level(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// A string as `Debug` writes it, which is how tracing-subscriber's text
/// format writes a `&str` field. Printable ASCII without `"` or `\` is
/// copied; anything else goes through `Debug` itself.
fn debug_str(buf: &mut Vec<u8>, s: &str) {
    if !needs_escape(s, true) {
        quoted(buf, s);
    } else {
        let _ = write!(buf, "{s:?}");
    }
}

/// A JSON string as serde_json writes it.
fn json_str(buf: &mut Vec<u8>, s: &str) {
    if !needs_escape(s, false) {
        quoted(buf, s);
    } else {
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

/// `s` between double quotes, as it is: for strings that need no escape.
fn quoted(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

/// Whether `s` holds a control character, `"` or `\\` (or, when
/// `ascii_only`, anything but printable ASCII). Written without an early
/// exit, so the compiler checks sixteen bytes or more at a time.
fn needs_escape(s: &str, ascii_only: bool) -> bool {
    s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (ascii_only & (b > 0x7e)) | (b == b'"') | (b == b'\\')
    })
}

thread_local! {
    /// The second the date and time below were formatted for, and them.
    static SECOND: RefCell<(u64, [u8; 19])> = const { RefCell::new((u64::MAX, [0; 19])) };
}

/// RFC 3339 in UTC with microseconds (`2026-12-03T17:14:06.706681Z`), as
/// tracing-subscriber's default clock writes it.
pub(crate) fn timestamp(buf: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut second = cell.borrow_mut();
        if second.0 != secs {
            *second = (secs, date_time(secs));
        }
        buf.extend_from_slice(&second.1);
    });
    let micros = since.subsec_micros();
    let mut digits = [b'.', b'0', b'0', b'0', b'0', b'0', b'0', b'Z'];
    let mut m = micros;
    for d in digits[1..7].iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    buf.extend_from_slice(&digits);
}

/// `YYYY-MM-DDTHH:MM:SS` of seconds since the epoch (civil-from-days,
/// Howard Hinnant's algorithm; years up to 9999).
fn date_time(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00";
    let put = |out: &mut [u8; 19], at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut out, 0, 4, year.clamp(0, 9999) as u64);
    put(&mut out, 5, 2, month as u64);
    put(&mut out, 8, 2, day as u64);
    put(&mut out, 11, 2, rem / 3600);
    put(&mut out, 14, 2, rem / 60 % 60);
    put(&mut out, 17, 2, rem % 60);
    out
}

#[cfg(test)]
mod tests;
