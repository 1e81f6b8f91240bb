"""An at-least-once consumer's two checks (crates/popbill-events/src/gate.rs):
have I handled this event already (by ce_id), and is it older than what I
already applied to its document (by stateDT)?

The memory is a GateStore. InMemoryGateStore is the Rust gate's: bounded by
a window of record time and a count. A service that must survive restarts
implements GateStore over its own database, written in the same
transaction as its own state, so that "handled" and "remembered" cannot
part.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Deque, Dict, Optional, Protocol, Set, Tuple

from .record import Delivery

Document = Tuple[str, str]
#: A stateDT as its KST wall-clock parts: ordered as the instants are
#: (one fixed offset), year 0 included.
StateKey = Tuple[int, ...]


@dataclass(frozen=True)
class Verdict:
    """What to do with a delivery: ``apply``, ``duplicate``, or ``stale``
    (then ``applied`` is the newest stateDT applied to its document, as
    KST wall-clock parts)."""
    kind: str
    applied: Optional[StateKey] = None

    @property
    def is_apply(self) -> bool:
        return self.kind == "apply"

    @property
    def is_duplicate(self) -> bool:
        return self.kind == "duplicate"

    @property
    def is_stale(self) -> bool:
        return self.kind == "stale"


APPLY = Verdict("apply")
DUPLICATE = Verdict("duplicate")


class GateStore(Protocol):
    """Where the gate keeps what it remembers."""

    def seen(self, event_id: str) -> bool:
        """Whether this ce_id was handled."""

    def applied_state(self, doc: Document) -> Optional[StateKey]:
        """The newest stateDT applied to the document, if remembered."""

    def remember(self, event_id: str, doc: Optional[Document], state: Optional[StateKey],
                 at: datetime) -> None:
        """Records the id as handled, and the document's stateDT when newer
        (``at``: the record time, for expiry)."""


class InMemoryGateStore:
    """The Rust gate's memory: ids and documents for ``window`` of record
    time, at most ``max_entries`` of each, oldest forgotten first."""

    def __init__(self, window: timedelta = timedelta(hours=48), max_entries: int = 1_000_000):
        self.window = window
        self.max_entries = max(1, max_entries)
        self._ids: Set[str] = set()
        self._id_times: Deque[Tuple[datetime, str]] = deque()
        # doc -> [newest stateDT applied, last touched]
        self._documents: Dict[Document, list] = {}
        self._document_times: Deque[Tuple[datetime, Document]] = deque()
        self._now: Optional[datetime] = None

    def seen(self, event_id: str) -> bool:
        return event_id in self._ids

    def applied_state(self, doc: Document) -> Optional[StateKey]:
        entry = self._documents.get(doc)
        return None if entry is None else entry[0]

    def remember(self, event_id: str, doc: Optional[Document], state: Optional[StateKey],
                 at: datetime) -> None:
        self._now = at if self._now is None else max(self._now, at)
        if event_id not in self._ids:
            self._ids.add(event_id)
            self._id_times.append((at, event_id))
        if doc is not None and state is not None:
            entry = self._documents.setdefault(doc, [state, at])
            entry[0] = max(entry[0], state)
            entry[1] = max(entry[1], at)
            self._document_times.append((entry[1], doc))
        self._expire()

    def remembered_ids(self) -> int:
        return len(self._ids)

    def remembered_documents(self) -> int:
        return len(self._documents)

    def _expire(self) -> None:
        now = self._now
        if now is None:
            return

        def old(t: datetime) -> bool:
            return now - t > self.window

        while self._id_times:
            t, _ = self._id_times[0]
            if not old(t) and len(self._ids) <= self.max_entries:
                break
            _, event_id = self._id_times.popleft()
            self._ids.discard(event_id)
        while self._document_times:
            t, _ = self._document_times[0]
            if not old(t) and len(self._documents) <= self.max_entries:
                break
            t, doc = self._document_times.popleft()
            entry = self._documents.get(doc)
            # An entry whose document was touched since is not the latest.
            if entry is not None and entry[1] == t:
                del self._documents[doc]


def _ordering(d: Delivery) -> Tuple[Optional[Document], Optional[StateKey]]:
    sdt = d.state_dt()
    doc = d.document()
    if sdt is None or not sdt.is_valid or doc is None:
        return None, None
    return doc, sdt.sort_key()


class Gate:
    """Deduplication by ce_id and per-document ordering by stateDT.

    An event whose stateDT is older than the newest applied to its document
    is stale; an equal one is not (an OPEN carries the stateDT of the state
    it was opened in). Events without a document or a valid stateDT are
    never stale.
    """

    def __init__(self, store: Optional[GateStore] = None):
        self.store: GateStore = store if store is not None else InMemoryGateStore()

    def check(self, d: Delivery) -> Verdict:
        """What to do with ``d``, remembering nothing."""
        if self.store.seen(d.id):
            return DUPLICATE
        doc, state = _ordering(d)
        if doc is not None and state is not None:
            applied = self.store.applied_state(doc)
            if applied is not None and state < applied:
                return Verdict("stale", applied)
        return APPLY

    def record(self, d: Delivery) -> None:
        """Remembers ``d`` as handled. Call it after handling (or skipping)
        a delivery, before committing its offset."""
        doc, state = _ordering(d)
        at = _received(d)
        self.store.remember(d.id, doc, state, at)

    def admit(self, d: Delivery) -> Verdict:
        """check, then record unless a duplicate."""
        verdict = self.check(d)
        if not verdict.is_duplicate:
            self.record(d)
        return verdict


def _received(d: Delivery) -> datetime:
    """When the bridge received ``d`` as a datetime (now when unknown, or
    before year 1, which datetime cannot hold)."""
    r = d.received()
    if r is not None:
        try:
            return r.datetime()
        except ValueError:
            pass
    return datetime.now(timezone.utc)
