"""The canonical JSON form of a decoded record, byte for byte the one of
the Rust crate's ``canonical_json`` and the Java client's
``Canonical.json`` (rules: tests/vectors/README.md)."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any, Optional, Union

from . import _json
from .events import UnknownEvent
from .record import BodyError, DecodeError, Delivery, Envelope, NotADelivery
from .time import Instant, PbDate, PbDateTime

_KINDS = {
    "TaxInvoiceEvent": "tax_invoice",
    "StatementEvent": "statement",
    "CashReceiptEvent": "cash_receipt",
    "HometaxTaxInvoiceEvent": "hometax_tax_invoice",
    "HometaxCashReceiptEvent": "hometax_cash_receipt",
    "KakaoEvent": "kakao",
    "UnknownEvent": "unknown",
}


def canonical_json(decoded: Union[Delivery, DecodeError]) -> str:
    """The canonical text (no trailing newline) of a Delivery, or of the
    DecodeError that ``RawRecord.decode`` raised."""
    if isinstance(decoded, Delivery):
        tree = {"envelope": _envelope(decoded.envelope), "error": None, "event": _event(decoded.event)}
    elif isinstance(decoded, NotADelivery):
        tree = {"envelope": None, "error": {"kind": "not_a_delivery"}, "event": None}
    elif isinstance(decoded, BodyError):
        error: dict = {"kind": decoded.kind}
        if decoded.kind == "not_utf8":
            error["valid_up_to"] = decoded.valid_up_to
        tree = {"envelope": _envelope(decoded.envelope), "error": error, "event": None}
    else:
        raise TypeError(f"not a decode result: {type(decoded).__name__}")
    return _json.dumps(tree)


def _instant(t: Optional[Instant]) -> Optional[str]:
    return None if t is None else t.iso()


def _bytes(v: Optional[bytes]) -> Any:
    if v is None:
        return None
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(v).decode("ascii")}


def _envelope(e: Envelope) -> dict:
    ce = e.cloud_event
    return {
        "cloud_event": {"id": ce.id, "spec_version": ce.spec_version, "source": ce.source, "type": ce.type,
                        "time": _instant(ce.time), "subject": ce.subject},
        "webhook_type": e.webhook_type,
        "mid": e.mid,
        "corp_num": e.corp_num,
        "event_type": e.event_type,
        "content_type": e.content_type,
        "key": e.key,
        "received_at": _instant(e.received_at),
        "timestamp": _instant(e.timestamp),
        "rejection_reason": e.rejection_reason,
        "other_headers": [[n, _bytes(v)] for n, v in e.other_headers],
    }


def _value(v: Any) -> Any:
    if isinstance(v, PbDateTime) or isinstance(v, PbDate):
        return {"raw": v.raw, "value": v.iso() if v.is_valid else None, "error": v.error}
    return v


def _event(e: Any) -> dict:
    out = {f.name: _value(getattr(e, f.name)) for f in dataclasses.fields(e)}
    out["kind"] = _KINDS[type(e).__name__]
    return out
