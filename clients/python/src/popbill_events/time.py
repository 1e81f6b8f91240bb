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
        return self.parts is not None

    def iso(self) -> str:
        """``2025-11-14T09:30:11+09:00`` (the canonical form's value)."""
        y, mo, d, h, mi, s = self._valid()
        return f"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+09:00"

    def datetime(self) -> datetime:
        """The aware date-time in KST (raises DateError when invalid, or for
        year 0, which Python cannot hold)."""
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
