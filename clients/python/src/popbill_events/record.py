"""A Kafka record as popbill-bridge writes it, decoded (the Python side of
crates/popbill-events/src/record.rs).

Input is plain bytes and header pairs (RawRecord), so any Kafka client
works; ``RawRecord.from_confluent(msg)`` reads a confluent-kafka message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _json
from .events import Event, document, parse_event, state_dt, trim
from .time import Instant, PbDateTime, _days_in_month, days_from_civil

#: Header with the bridge's receive time (RFC 3339, UTC, milliseconds).
RECEIVED_AT = "popbill-bridge-received-at"
#: Header with the reason a delivery went to the dead-letter topic.
REJECTION_REASON = "popbill-bridge-rejection-reason"
#: Header on records `popbill-bridge redrive` wrote: where the delivery was.
REDRIVEN_FROM = "popbill-bridge-redriven-from"

#: The consumer settings every reader of the topics needs: only records of
#: committed transactions (librdkafka's default; set it anyway, so that no
#: copied configuration loses it).
CONSUMER_PROPERTIES = {"isolation.level": "read_committed"}

# Headers read into Envelope fields; the rest go to other_headers.
_INTERPRETED = ("ce_id", "ce_specversion", "ce_source", "ce_type", "ce_time", "ce_subject",
                "pb-webhook-type", "pb-webhook-mid", "pb-webhook-corpnum", "pb-webhook-eventtype",
                "content-type", RECEIVED_AT, REJECTION_REASON)

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")

def parse_instant(s: str) -> Optional[Instant]:
    """A header time in the one form the three libraries read (the bridge's:
    ``YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)``, offset hours to 23), or None;
    computed arithmetically
    (any year 0000-9999, floored to the millisecond), None outside the
    instants the Rust crate holds, as there."""
    m = _RFC3339.match(s)
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, z, sign, oh, om = m.groups()
    year, month, day = int(y), int(mo), int(d)
    hour, minute, second = int(h), int(mi), int(sec)
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)
            and hour <= 23 and minute <= 59 and second <= 59):
        return None
    seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    if not z:
        if int(oh) > 23 or int(om) > 59:
            return None
        offset = int(oh) * 3600 + int(om) * 60
        seconds -= offset if sign == "+" else -offset
    # The fraction is added to whole seconds: truncating it floors.
    ms = int(frac[:3].ljust(3, "0")) if frac else 0
    return Instant.from_millis(seconds * 1000 + ms)


def _ascii_lower(s: str) -> str:
    return s.lower() if s.isascii() else s


@dataclass
class CloudEvent:
    """The CloudEvents attributes of a record (binary mode, Kafka binding)."""
    id: str
    spec_version: Optional[str] = None
    source: Optional[str] = None
    type: Optional[str] = None
    time: Optional[Instant] = None
    subject: Optional[str] = None


@dataclass
class Envelope:
    """Everything about a record but its value."""
    cloud_event: CloudEvent
    webhook_type: Optional[str] = None
    mid: Optional[str] = None
    corp_num: Optional[str] = None
    event_type: Optional[str] = None
    content_type: Optional[str] = None
    key: Optional[str] = None
    received_at: Optional[Instant] = None
    timestamp: Optional[Instant] = None
    rejection_reason: Optional[str] = None
    other_headers: List[Tuple[str, Optional[bytes]]] = field(default_factory=list)


@dataclass
class Delivery:
    """A decoded delivery record: its envelope and its typed event."""
    envelope: Envelope
    event: Event

    @property
    def id(self) -> str:
        """ce_id: what to deduplicate on."""
        return self.envelope.cloud_event.id

    def document(self) -> Optional[Tuple[str, str]]:
        """(corpNum, itemKey), when both are known."""
        return document(self.event)

    def state_dt(self) -> Optional[PbDateTime]:
        return state_dt(self.event)

    def received(self) -> Optional[Instant]:
        """The record timestamp, else received-at, else ce_time: the clock
        the gate's window runs on."""
        e = self.envelope
        return e.timestamp or e.received_at or e.cloud_event.time


class DecodeError(Exception):
    """A record that is not a delivery, or whose value is not an event."""


class NotADelivery(DecodeError):
    """No ce_id (nor pb-webhook-mid): the ledger topic, or another producer."""

    def __init__(self) -> None:
        super().__init__("not a popbill-bridge delivery record (no ce_id header)")


class BodyError(DecodeError):
    """A delivery whose value is not a JSON object (a dead letter). ``kind``
    is one of missing, empty, not_utf8 (with ``valid_up_to``), not_json,
    not_object, too_deep."""

    def __init__(self, envelope: Envelope, kind: str, detail: str = "", valid_up_to: Optional[int] = None):
        super().__init__(f"delivery {envelope.cloud_event.id}: {kind}{': ' + detail if detail else ''}")
        self.envelope = envelope
        self.kind = kind
        self.valid_up_to = valid_up_to


Header = Tuple[str, Optional[bytes]]


@dataclass
class RawRecord:
    """One Kafka record, as bytes: what any Kafka client gives."""
    value: Optional[bytes] = None
    key: Optional[bytes] = None
    headers: Sequence[Header] = ()
    timestamp_millis: Optional[int] = None

    @staticmethod
    def from_confluent(msg: Any) -> "RawRecord":
        """A confluent_kafka.Message (not imported: any object with its
        methods will do)."""
        ts_type, ts = msg.timestamp()
        return RawRecord(
            value=msg.value(),
            key=msg.key(),
            headers=[(k, v) for k, v in (msg.headers() or [])],
            # TIMESTAMP_NOT_AVAILABLE is 0.
            timestamp_millis=ts if ts_type != 0 else None,
        )

    def header(self, name: str) -> Optional[str]:
        """The first header of that name (ASCII case ignored), when its
        value is UTF-8 and not blank."""
        return _header_text(self._first_headers(), name)

    def _first_headers(self) -> Dict[str, Optional[bytes]]:
        # One pass over the headers per record, not one per name looked up.
        first: Dict[str, Optional[bytes]] = {}
        for n, v in self.headers:
            first.setdefault(_ascii_lower(n), v)
        return first

    def envelope(self) -> Envelope:
        """The headers, key and timestamp; raises NotADelivery without ce_id."""
        first = self._first_headers()

        def text(name: str) -> Optional[str]:
            return _header_text(first, name)

        ident = text("ce_id") or text("pb-webhook-mid")
        if ident is None:
            raise NotADelivery()

        def instant(name: str) -> Optional[Instant]:
            h = text(name)
            return None if h is None else parse_instant(h)

        timestamp = None
        if self.timestamp_millis is not None:
            timestamp = Instant.from_millis(self.timestamp_millis)
        return Envelope(
            cloud_event=CloudEvent(ident, text("ce_specversion"), text("ce_source"), text("ce_type"),
                                   instant("ce_time"), text("ce_subject")),
            webhook_type=text("pb-webhook-type"),
            mid=text("pb-webhook-mid"),
            corp_num=text("pb-webhook-corpnum"),
            event_type=text("pb-webhook-eventtype"),
            content_type=text("content-type"),
            key=None if self.key is None else self.key.decode("utf-8", "replace"),
            received_at=instant(RECEIVED_AT),
            timestamp=timestamp,
            rejection_reason=text(REJECTION_REASON),
            other_headers=[(n, v) for n, v in self.headers if _ascii_lower(n) not in _INTERPRETED],
        )

    def decode(self) -> Delivery:
        """Envelope and typed event. Raises NotADelivery (no ce_id) or
        BodyError (a value that is not a JSON object: the dead-letter
        topic). An unknown webhook type is UnknownEvent, not an error."""
        envelope = self.envelope()
        body = _object(envelope, self.value)
        # The envelope holds the same header texts the event reads.
        event = parse_event(envelope.webhook_type, envelope.event_type, envelope.corp_num, body)
        return Delivery(envelope, event)


def _header_text(first: Dict[str, Optional[bytes]], name: str) -> Optional[str]:
    v = first.get(name)
    if v is None:
        return None
    try:
        text = trim(v.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    return text or None


def _object(envelope: Envelope, value: Optional[bytes]) -> dict:
    if value is None:
        raise BodyError(envelope, "missing")
    # Rust's u8::is_ascii_whitespace: not vertical tab, unlike bytes.isspace.
    if not value.strip(b" \t\n\x0c\r"):
        raise BodyError(envelope, "empty")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BodyError(envelope, "not_utf8", valid_up_to=e.start) from None
    try:
        parsed = _json.loads(text)
    except _json.JsonError as e:
        raise BodyError(envelope, "too_deep" if e.too_deep else "not_json", str(e)) from None
    if not isinstance(parsed, dict):
        raise BodyError(envelope, "not_object")
    return parsed


def decode(record: RawRecord) -> Delivery:
    """``record.decode()``."""
    return record.decode()


Decoded = Union[Delivery, DecodeError]
