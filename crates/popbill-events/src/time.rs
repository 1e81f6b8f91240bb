//! POPBiLL dates and times: `yyyyMMddHHmmss` and `yyyyMMdd`, Korean time.
//!
//! Korea has one time zone, UTC+9, without daylight saving, so a fixed
//! offset is exact and no time zone database is needed. Parsing goes through
//! [`jiff`], which knows the calendar: `20250230…` (Feb 30), month 13,
//! hour 24 and second 60 are errors, never a panic and never a silently
//! shifted date.

use std::fmt;

use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, ZonedDateTime};

/// Korean Standard Time, UTC+9: the implied offset of every POPBiLL date.
pub const KST: Offset = Offset::constant(9);

/// Why a POPBiLL date or date-time field could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DateError {
    /// Not the expected number of characters (14 for a date-time, 8 for a
    /// date).
    #[error("expected {expected} digits, got {got} characters")]
    WrongLength {
        /// 14 or 8.
        expected: usize,
        /// The length found, in characters.
        got: usize,
    },
    /// Something other than ASCII digits.
    #[error("not all digits")]
    NotDigits,
    /// Digits, but no such day or time (Feb 30, month 13, hour 24, ...).
    #[error("no such date or time: {0}")]
    Invalid(String),
}

/// Parses `yyyyMMddHHmmss` into a civil (Korean wall-clock) date-time.
///
/// ```
/// use popbill_events::time::{parse_datetime, DateError};
///
/// let dt = parse_datetime("20251114093011")?;
/// assert_eq!(dt.to_string(), "2025-11-14T09:30:11");
/// assert!(matches!(parse_datetime("20250230093011"), Err(DateError::Invalid(_))));
/// assert!(matches!(parse_datetime("20251114240000"), Err(DateError::Invalid(_))));
/// assert!(matches!(parse_datetime("20251114"), Err(DateError::WrongLength { .. })));
/// # Ok::<(), DateError>(())
/// ```
pub fn parse_datetime(s: &str) -> Result<DateTime, DateError> {
    let d = digits::<14>(s)?;
    DateTime::new(
        year(&d),
        two(&d, 4),
        two(&d, 6),
        two(&d, 8),
        two(&d, 10),
        two(&d, 12),
        0,
    )
    .map_err(|e| DateError::Invalid(e.to_string()))
}

/// Parses `yyyyMMdd` into a date.
///
/// ```
/// use popbill_events::time::parse_date;
///
/// assert_eq!(parse_date("20251114")?.to_string(), "2025-11-14");
/// assert!(parse_date("20251301").is_err());
/// # Ok::<(), popbill_events::time::DateError>(())
/// ```
pub fn parse_date(s: &str) -> Result<Date, DateError> {
    let d = digits::<8>(s)?;
    Date::new(year(&d), two(&d, 4), two(&d, 6)).map_err(|e| DateError::Invalid(e.to_string()))
}

/// The digits of `s` as numbers, when `s` is exactly `N` ASCII digits.
fn digits<const N: usize>(s: &str) -> Result<[u8; N], DateError> {
    let b = s.as_bytes();
    if b.len() != N {
        return Err(DateError::WrongLength {
            expected: N,
            got: s.chars().count(),
        });
    }
    let mut out = [0u8; N];
    for (o, c) in out.iter_mut().zip(b) {
        if !c.is_ascii_digit() {
            return Err(DateError::NotDigits);
        }
        *o = c - b'0';
    }
    Ok(out)
}

fn year(d: &[u8]) -> i16 {
    // At most 9999: fits.
    d[..4].iter().fold(0i16, |y, &x| y * 10 + i16::from(x))
}

fn two(d: &[u8], at: usize) -> i8 {
    // At most 99: fits.
    (d[at] * 10 + d[at + 1]) as i8
}

/// A `yyyyMMddHHmmss` field in Korean time: the text as sent, and what it
/// means (or why it means nothing).
///
/// Compare instants with [`timestamp`](Self::timestamp).
///
/// ```
/// use popbill_events::PbDateTime;
///
/// let t = PbDateTime::parse("20251114093011");
/// assert_eq!(t.raw(), "20251114093011");
/// assert_eq!(t.timestamp()?.to_string(), "2025-11-14T00:30:11Z");
/// assert_eq!(t.zoned()?.to_string(), "2025-11-14T09:30:11+09:00[+09:00]");
///
/// let bad = PbDateTime::parse("20250230093011"); // February 30th
/// assert!(!bad.is_valid());
/// assert!(bad.timestamp().is_err());
/// # Ok::<(), popbill_events::DateError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PbDateTime {
    raw: String,
    parsed: Result<DateTime, DateError>,
}

impl PbDateTime {
    /// Reads `s` (never fails: an invalid value keeps its error).
    pub fn parse(s: &str) -> PbDateTime {
        PbDateTime {
            raw: s.to_owned(),
            parsed: parse_datetime(s),
        }
    }

    /// The text as POPBiLL sent it.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// True when the text is a real date and time.
    pub fn is_valid(&self) -> bool {
        self.parsed.is_ok()
    }

    /// The Korean wall-clock date-time.
    pub fn datetime(&self) -> Result<DateTime, DateError> {
        self.parsed.clone()
    }

    /// The instant, reading the value as Korean time (UTC+9).
    pub fn timestamp(&self) -> Result<Timestamp, DateError> {
        let dt = self.datetime()?;
        KST.to_timestamp(dt)
            .map_err(|e| DateError::Invalid(e.to_string()))
    }

    /// The date-time with its `+09:00` offset.
    pub fn zoned(&self) -> Result<ZonedDateTime, DateError> {
        Ok(self.timestamp()?.to_zoned_datetime(TimeZone::fixed(KST)))
    }
}

impl fmt::Debug for PbDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parsed {
            Ok(dt) => write!(f, "{dt}+09:00"),
            Err(e) => write!(f, "invalid {:?} ({e})", self.raw),
        }
    }
}

impl fmt::Display for PbDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A `yyyyMMdd` field (a calendar day in Korea): the text as sent, and what
/// it means (or why it means nothing).
///
/// ```
/// use popbill_events::PbDate;
///
/// let d = PbDate::parse("20251114");
/// assert_eq!(d.date()?.to_string(), "2025-11-14");
/// assert!(PbDate::parse("20251301").date().is_err()); // month 13
/// # Ok::<(), popbill_events::DateError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PbDate {
    raw: String,
    parsed: Result<Date, DateError>,
}

impl PbDate {
    /// Reads `s` (never fails: an invalid value keeps its error).
    pub fn parse(s: &str) -> PbDate {
        PbDate {
            raw: s.to_owned(),
            parsed: parse_date(s),
        }
    }

    /// The text as POPBiLL sent it.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// True when the text is a real date.
    pub fn is_valid(&self) -> bool {
        self.parsed.is_ok()
    }

    /// The date.
    pub fn date(&self) -> Result<Date, DateError> {
        self.parsed.clone()
    }
}

impl fmt::Debug for PbDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parsed {
            Ok(d) => write!(f, "{d}"),
            Err(e) => write!(f, "invalid {:?} ({e})", self.raw),
        }
    }
}

impl fmt::Display for PbDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_date_times_are_korean_time() {
        let t = PbDateTime::parse("20251114093011");
        assert_eq!(
            t.timestamp().unwrap(),
            "2025-11-14T00:30:11Z".parse::<Timestamp>().unwrap()
        );
        // Leap day in a leap year; the turn of a year across the offset.
        assert!(PbDateTime::parse("20240229120000").is_valid());
        assert_eq!(
            PbDateTime::parse("20260101050000")
                .timestamp()
                .unwrap()
                .to_string(),
            "2025-12-31T20:00:00Z"
        );
    }

    #[test]
    fn impossible_date_times_are_errors() {
        for (bad, why) in [
            ("20250230093011", "Feb 30"),
            ("20250229093011", "Feb 29 in a common year"),
            ("20251314093011", "month 13"),
            ("20250014093011", "month 0"),
            ("20251100093011", "day 0"),
            ("20251131093011", "Nov 31"),
            ("20251114240000", "hour 24"),
            ("20251114096000", "minute 60"),
            ("20251114093060", "second 60"),
        ] {
            let t = PbDateTime::parse(bad);
            assert!(
                matches!(t.datetime(), Err(DateError::Invalid(_))),
                "{why}: {t:?}"
            );
            assert!(t.timestamp().is_err() && t.zoned().is_err(), "{why}");
        }
        for bad in ["", "2025111409301", "202511140930111", "2025111409301x"] {
            assert!(parse_datetime(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_datetime("２０２５１１１４０９３０"),
            Err(DateError::WrongLength {
                expected: 14,
                got: 12
            })
        );
        assert_eq!(parse_datetime("2025-11-14T09:"), Err(DateError::NotDigits));
    }

    #[test]
    fn dates() {
        assert!(PbDate::parse("20240229").is_valid());
        for bad in ["20250229", "20251301", "20251132", "2025111", "2025111a"] {
            assert!(!PbDate::parse(bad).is_valid(), "{bad}");
        }
    }
}
