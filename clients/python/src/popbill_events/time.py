"""POPBiLL dates and times: ``yyyyMMddHHmmss`` and ``yyyyMMdd``, Korean time.

Korea is UTC+9 without daylight saving (since 1988), so a fixed offset is
exact for every POPBiLL date, as in the Rust crate; no tzdata is needed.
Feb 30, month 13, hour 24 or second 60 are values with an error, never an
exception at decode time and never a silently shifted date. The calendar
rules are written out rather than left to ``datetime`` because ``datetime``
has no year 0, which the Rust and Java libraries accept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Optional, Tuple

#: Korean Standard Time, the implied offset of every POPBiLL date.
KST = timezone(timedelta(hours=9), "KST")

#: Why a date field could not be read (the same kinds in the three
#: libraries; the canonical form carries the kind, not a message).
WRONG_LENGTH = "wrong_length"
NOT_DIGITS = "not_digits"
INVALID = "invalid"


class DateError(ValueError):
    """A POPBiLL date or date-time that means nothing; ``kind`` says why."""

    def __init__(self, kind: str, raw: str):
        super().__init__(f"{kind}: {raw!r}")
        self.kind = kind
        self.raw = raw


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _digits(s: str, n: int) -> Tuple[Optional[Tuple[int, ...]], Optional[str]]:
    # Length in UTF-8 bytes, as Rust counts it: "２０２５…" (full width) is
    # too long, not "not digits".
    if len(s.encode("utf-8")) != n:
        return None, WRONG_LENGTH
    if not all("0" <= c <= "9" for c in s):
        return None, NOT_DIGITS
    return tuple(ord(c) - 48 for c in s), None


def _parse(s: str, n: int) -> Tuple[Optional[Tuple[int, ...]], Optional[str]]:
    d, error = _digits(s, n)
    if d is None:
        return None, error
    year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]
    month = d[4] * 10 + d[5]
    day = d[6] * 10 + d[7]
    parts = [year, month, day]
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        return None, INVALID
    if n == 14:
        hour, minute, second = d[8] * 10 + d[9], d[10] * 10 + d[11], d[12] * 10 + d[13]
        if hour > 23 or minute > 59 or second > 59:
            return None, INVALID
        parts += [hour, minute, second]
    return tuple(parts), None


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, any year (year 0
    and before included; ``datetime`` stops at year 1)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> Tuple[int, int, int]:
    """The inverse of days_from_civil."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


#: The instants the Rust crate (jiff's Timestamp) can hold, in seconds since
#: the epoch: -009999-01-02T01:59:59Z to 9999-12-30T22:00:00.999999999Z. A
#: header time outside them is no time (None) in all three libraries.
MIN_EPOCH_SECOND = -377705023201
MAX_EPOCH_SECOND = 253402207200

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, order=True)
class Instant:
    """A point in time as milliseconds since the epoch (floored), computed
    arithmetically so that every instant the Rust crate holds is one here
    too, years 0 and 1 included (``datetime`` cannot hold them)."""

    epoch_millis: int

    @staticmethod
    def from_millis(ms: int) -> Optional["Instant"]:
        """None outside the range the Rust crate holds."""
        if not MIN_EPOCH_SECOND <= ms // 1000 <= MAX_EPOCH_SECOND:
            return None
        return Instant(ms)

    def datetime(self) -> datetime:
        """The aware UTC datetime; raises DateError (``invalid``) for an
        instant before year 1 or after 9999, which datetime cannot hold."""
        try:
            return _EPOCH + timedelta(milliseconds=self.epoch_millis)
        except OverflowError:
            raise DateError(INVALID, self.iso()) from None

    def iso(self) -> str:
        """UTC with three fraction digits (the canonical form):
        ``2025-11-14T00:30:11.000Z``, ``-001-12-31T15:00:00.000Z``."""
        seconds, ms = divmod(self.epoch_millis, 1000)
        days, sod = divmod(seconds, 86400)
        y, mo, d = civil_from_days(days)
        h, rem = divmod(sod, 3600)
        mi, sec = divmod(rem, 60)
        # jiff's %Y: four characters with the sign (-001).
        return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}.{ms:03d}Z"

    def __str__(self) -> str:
        return self.iso()


@dataclass(frozen=True)
class PbDateTime:
    """A ``yyyyMMddHHmmss`` field in Korean time: the text as sent, and its
    meaning or why it has none (``error``)."""

    raw: str
    parts: Optional[Tuple[int, ...]] = field(default=None, compare=False, repr=False)
    error: Optional[str] = None

    @staticmethod
    def parse(s: str) -> "PbDateTime":
        parts, error = _parse(s, 14)
        return PbDateTime(s, parts, error)

    @property
    def is_valid(self) -> bool:
        """A real date and time. Year 0 is valid (as in Rust and Java) but
        has no ``datetime()``: use ``instant()`` or ``iso()``."""
        return self.parts is not None

    def instant(self) -> Instant:
        """The instant at the fixed +09:00 (raises DateError when invalid)."""
        y, mo, d, h, mi, s = self._valid()
        seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - 9 * 3600
        return Instant(seconds * 1000)

    def iso(self) -> str:
        """``2025-11-14T09:30:11+09:00`` (the canonical form's value)."""
        y, mo, d, h, mi, s = self._valid()
        return f"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+09:00"

    def datetime(self) -> datetime:
        """The aware date-time in KST. Raises DateError when invalid, and
        for year 0, which ``datetime`` cannot hold although the date is
        valid (``is_valid``, as in Rust and Java): ``iso()`` and
        ``instant()`` hold every valid date."""
        y, mo, d, h, mi, s = self._valid()
        if y < 1:
            raise DateError(INVALID, self.raw)
        return datetime(y, mo, d, h, mi, s, tzinfo=KST)

    def sort_key(self) -> Tuple[int, ...]:
        """Orders like the instants (one fixed offset), year 0 included: what
        the gate compares."""
        return self._valid()

    def _valid(self) -> Tuple[int, ...]:
        if self.parts is None:
            raise DateError(self.error or INVALID, self.raw)
        return self.parts

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True)
class PbDate:
    """A ``yyyyMMdd`` field (a calendar day in Korea)."""

    raw: str
    parts: Optional[Tuple[int, ...]] = field(default=None, compare=False, repr=False)
    error: Optional[str] = None

    @staticmethod
    def parse(s: str) -> "PbDate":
        parts, error = _parse(s, 8)
        return PbDate(s, parts, error)

    @property
    def is_valid(self) -> bool:
        return self.parts is not None

    def iso(self) -> str:
        if self.parts is None:
            raise DateError(self.error or INVALID, self.raw)
        y, m, d = self.parts
        return f"{y:04}-{m:02}-{d:02}"

    def date(self) -> date:
        if self.parts is None or self.parts[0] < 1:
            raise DateError(self.error or INVALID, self.raw)
        return date(*self.parts)

    def __str__(self) -> str:
        return self.raw
