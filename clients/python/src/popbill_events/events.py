"""Typed webhook events, one per POPBiLL product, and UnknownEvent for the
rest: the dataclasses of crates/popbill-events/src/event.rs, read with the
same tolerance (numbers or strings, spelling variants, blank values absent,
untyped fields kept in ``extra``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ._json import format_float
from .time import PbDate, PbDateTime

# Pb-Webhook-Type values, as POPBiLL sends them.
TAX_INVOICE = "TAXINVOICE.STATE"
STATEMENT = "STATEMENT.STATE"
CASH_RECEIPT = "CASHBILL.STATE"
HOMETAX_TAX_INVOICE = "HT.TAXINVOICEXML"
HOMETAX_CASH_RECEIPT = "HT.CASHBILL"
KAKAO = "KAKAO.STATE"
WEBHOOK_TYPES = (TAX_INVOICE, STATEMENT, CASH_RECEIPT, HOMETAX_TAX_INVOICE, HOMETAX_CASH_RECEIPT, KAKAO)

#: The documented event types, in POPBiLL's spelling; a value that differs
#: only in ASCII case is read as one of these (``open`` is ``OPEN``).
EVENT_TYPES = ("Issue", "CancelIssue", "Cancel", "CLOSEDOWN", "NTS", "OPEN", "MANUAL", "RESULT",
               "HTTaxinvoice", "HTCashbill")

# Rust's str::trim: Unicode White_Space, which is not Python's isspace().
_WHITESPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
               "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def trim(s: str) -> str:
    return s.strip(_WHITESPACE)


def _ascii_eq_ignore_case(a: str, b: str) -> bool:
    return len(a) == len(b) and a.isascii() and b.isascii() and a.lower() == b.lower()


def _known(s: str, known: Tuple[str, ...]) -> str:
    s = trim(s)
    for k in known:
        if _ascii_eq_ignore_case(s, k):
            return k
    return s


def webhook_type(s: str) -> str:
    """A Pb-Webhook-Type in its documented spelling (case ignored), or as
    sent."""
    return _known(s, WEBHOOK_TYPES)


def event_type(s: str) -> str:
    """An event type in its documented spelling (case ignored), or as sent."""
    return _known(s, EVENT_TYPES)


@dataclass
class TaxInvoiceEvent:
    """TAXINVOICE.STATE: a tax invoice changed state."""
    event_type: Optional[str] = None
    corp_num: Optional[str] = None
    item_key: Optional[str] = None
    nts_confirm_num: Optional[str] = None
    state_code: Optional[int] = None
    state_dt: Optional[PbDateTime] = None
    event_dt: Optional[PbDateTime] = None
    nts_send_dt: Optional[PbDateTime] = None
    nts_result_dt: Optional[PbDateTime] = None
    nts_send_err_code: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def nts_succeeded(self) -> Optional[bool]:
        """ntssendErrCode SUC001; None before a result."""
        return None if self.nts_send_err_code is None else self.nts_send_err_code == "SUC001"


@dataclass
class StatementEvent:
    """STATEMENT.STATE: an electronic statement changed state."""
    event_type: Optional[str] = None
    corp_num: Optional[str] = None
    item_key: Optional[str] = None
    invoice_num: Optional[str] = None
    mgt_key: Optional[str] = None
    state_code: Optional[int] = None
    state_dt: Optional[PbDateTime] = None
    issue_dt: Optional[PbDateTime] = None
    event_dt: Optional[PbDateTime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class CashReceiptEvent:
    """CASHBILL.STATE: a cash receipt changed state."""
    event_type: Optional[str] = None
    corp_num: Optional[str] = None
    franchise_corp_num: Optional[str] = None
    item_key: Optional[str] = None
    trade_date: Optional[PbDate] = None
    confirm_num: Optional[str] = None
    nts_result_code: Optional[str] = None
    state_code: Optional[int] = None
    state_dt: Optional[PbDateTime] = None
    issue_dt: Optional[PbDateTime] = None
    nts_send_dt: Optional[PbDateTime] = None
    nts_result_dt: Optional[PbDateTime] = None
    event_dt: Optional[PbDateTime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class HometaxTaxInvoiceEvent:
    """HT.TAXINVOICEXML: a tax invoice found on Hometax."""
    event_type: Optional[str] = None
    corp_num: Optional[str] = None
    nts_confirm_num: Optional[str] = None
    write_date: Optional[PbDate] = None
    issue_dt: Optional[PbDateTime] = None
    send_date: Optional[PbDate] = None
    invoice_type: Optional[int] = None
    invoicer_corp_num: Optional[str] = None
    invoicer_corp_name: Optional[str] = None
    invoicee_corp_num: Optional[str] = None
    invoicee_corp_name: Optional[str] = None
    supply_cost_total: Optional[int] = None
    tax_total: Optional[int] = None
    total_amount: Optional[int] = None
    event_dt: Optional[PbDateTime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class HometaxCashReceiptEvent:
    """HT.CASHBILL: a cash receipt found on Hometax."""
    event_type: Optional[str] = None
    corp_num: Optional[str] = None
    nts_confirm_num: Optional[str] = None
    trade_date: Optional[PbDate] = None
    trade_dt: Optional[PbDateTime] = None
    trade_type: Optional[str] = None
    trade_usage: Optional[str] = None
    invoice_type: Optional[str] = None
    total_amount: Optional[int] = None
    supply_cost: Optional[int] = None
    tax: Optional[int] = None
    service_fee: Optional[int] = None
    event_dt: Optional[PbDateTime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class KakaoEvent:
    """KAKAO.STATE: the result of a KakaoTalk message."""
    event_type: Optional[str] = None
    corp_num: Optional[str] = None
    receipt_num: Optional[str] = None
    request_num: Optional[str] = None
    serial_num: Optional[int] = None
    state: Optional[int] = None
    result: Optional[int] = None
    alt_result: Optional[int] = None
    content_type: Optional[int] = None
    send_num: Optional[str] = None
    receipt_dt: Optional[PbDateTime] = None
    reserve_dt: Optional[PbDateTime] = None
    send_dt: Optional[PbDateTime] = None
    result_dt: Optional[PbDateTime] = None
    event_dt: Optional[PbDateTime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class UnknownEvent:
    """Any other webhook type (or none): the whole body as JSON."""
    webhook_type: Optional[str] = None
    event_type: Optional[str] = None
    corp_num: Optional[str] = None
    body: Dict[str, Any] = field(default_factory=dict)


Event = Union[TaxInvoiceEvent, StatementEvent, CashReceiptEvent, HometaxTaxInvoiceEvent,
              HometaxCashReceiptEvent, KakaoEvent, UnknownEvent]

# Per webhook type: the class, and its fields in reading order as
# (attribute, reader, body names). Order matters: a field read takes its
# key out of the body, as in the Rust crate.
_TEXT, _INT, _U32, _DT, _DATE = "text", "int", "u32", "datetime", "date"
_SCHEMA: Dict[str, Tuple[type, List[Tuple[str, str, Tuple[str, ...]]]]] = {
    TAX_INVOICE: (TaxInvoiceEvent, [
        ("item_key", _TEXT, ("itemKey",)),
        ("nts_confirm_num", _TEXT, ("ntsConfirmNum",)),
        ("state_code", _U32, ("stateCode",)),
        ("state_dt", _DT, ("stateDT",)),
        ("event_dt", _DT, ("eventDT",)),
        ("nts_send_dt", _DT, ("ntssendDT",)),
        ("nts_result_dt", _DT, ("ntsresultDT",)),
        ("nts_send_err_code", _TEXT, ("ntssendErrCode",)),
    ]),
    STATEMENT: (StatementEvent, [
        ("item_key", _TEXT, ("itemKey",)),
        ("invoice_num", _TEXT, ("invoiceNum",)),
        ("mgt_key", _TEXT, ("mgtKey",)),
        ("state_code", _U32, ("stateCode",)),
        ("state_dt", _DT, ("stateDT",)),
        ("issue_dt", _DT, ("issueDT",)),
        ("event_dt", _DT, ("eventDT",)),
    ]),
    CASH_RECEIPT: (CashReceiptEvent, [
        ("franchise_corp_num", _TEXT, ("franchiseCorpNum",)),
        ("item_key", _TEXT, ("itemKey",)),
        ("trade_date", _DATE, ("tradeDate",)),
        ("confirm_num", _TEXT, ("confirmNum", "ntsConfirmNum")),
        ("nts_result_code", _TEXT, ("ntsresultCode",)),
        ("state_code", _U32, ("stateCode",)),
        ("state_dt", _DT, ("stateDT",)),
        ("issue_dt", _DT, ("issueDT",)),
        ("nts_send_dt", _DT, ("ntssendDT",)),
        ("nts_result_dt", _DT, ("ntsresultDT",)),
        ("event_dt", _DT, ("eventDT",)),
    ]),
    HOMETAX_TAX_INVOICE: (HometaxTaxInvoiceEvent, [
        ("nts_confirm_num", _TEXT, ("ntsconfirmNum",)),
        ("write_date", _DATE, ("writeDate",)),
        ("issue_dt", _DT, ("issueDT",)),
        ("send_date", _DATE, ("sendDate",)),
        ("invoice_type", _INT, ("invoiceType",)),
        ("invoicer_corp_num", _TEXT, ("invoicerCorpNum",)),
        ("invoicer_corp_name", _TEXT, ("invoicerCorpName",)),
        ("invoicee_corp_num", _TEXT, ("invoiceeCorpNum",)),
        ("invoicee_corp_name", _TEXT, ("invoiceeCorpName",)),
        ("supply_cost_total", _INT, ("supplyCostTotal",)),
        ("tax_total", _INT, ("taxTotal",)),
        ("total_amount", _INT, ("totalAmount",)),
        ("event_dt", _DT, ("eventDT",)),
    ]),
    HOMETAX_CASH_RECEIPT: (HometaxCashReceiptEvent, [
        ("nts_confirm_num", _TEXT, ("ntsconfirmNum",)),
        ("trade_date", _DATE, ("tradeDate",)),
        ("trade_dt", _DT, ("tradeDT",)),
        ("trade_type", _TEXT, ("tradeType",)),
        ("trade_usage", _TEXT, ("tradeUsage",)),
        ("invoice_type", _TEXT, ("invoiceType",)),
        ("total_amount", _INT, ("totalAmount",)),
        ("supply_cost", _INT, ("supplyCost",)),
        ("tax", _INT, ("tax",)),
        ("service_fee", _INT, ("serviceFee",)),
        ("event_dt", _DT, ("eventDT",)),
    ]),
    KAKAO: (KakaoEvent, [
        ("receipt_num", _TEXT, ("receiptNum",)),
        ("request_num", _TEXT, ("requestNum",)),
        ("serial_num", _INT, ("serialNum",)),
        ("state", _INT, ("state",)),
        ("result", _INT, ("result",)),
        ("alt_result", _INT, ("altResult",)),
        ("content_type", _INT, ("contentType",)),
        ("send_num", _TEXT, ("sendNum",)),
        ("receipt_dt", _DT, ("receiptDT",)),
        ("reserve_dt", _DT, ("reserveDT",)),
        ("send_dt", _DT, ("sendDT",)),
        ("result_dt", _DT, ("resultDT",)),
        ("event_dt", _DT, ("eventDT",)),
    ]),
}


def schema() -> Dict[str, Tuple[type, List[Tuple[str, str, Tuple[str, ...]]]]]:
    """Per webhook type: the class and its typed body fields (attribute,
    kind, body names). The AsyncAPI check reads it."""
    return _SCHEMA


def scalar_text(v: Any) -> Optional[str]:
    """A string (trimmed), a number or a boolean as text, as Rust's
    scalar_text: numbers in serde_json's form."""
    if isinstance(v, str):
        return trim(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    return None


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _integer(v: Any) -> Optional[int]:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        if _I64_MIN <= v <= _I64_MAX:
            return v
        v = float(v)  # a u64 above i64: serde_json's as_f64
    if isinstance(v, float):
        # 300.0 is 300; 300.5 or 1e300 is not an integer we keep.
        if abs(v) < 9.0e15 and v == int(v):
            return int(v)
        return None
    if isinstance(v, str):
        s = trim(v)
        if "," in s:
            s = s.replace(",", "")
        # Rust's i64 FromStr: an optional sign, then ASCII digits only.
        body = s[1:] if s[:1] in ("+", "-") else s
        if not body or not all("0" <= c <= "9" for c in body):
            return None
        n = int(s)
        return n if _I64_MIN <= n <= _I64_MAX else None
    return None


def _is_blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and trim(v) == "")


class _Fields:
    """The body, from which each typed field is taken (crates/popbill-events
    src/fields.rs): what is typed leaves, what cannot be typed stays."""

    def __init__(self, body: Dict[str, Any]):
        self.body = body

    def _key(self, names: Tuple[str, ...]) -> Optional[str]:
        for n in names:
            if n in self.body:
                return n
        # serde_json's map is ordered by key: the first in that order.
        for k in sorted(self.body):
            if any(_ascii_eq_ignore_case(k, n) for n in names):
                return k
        return None

    def take(self, names: Tuple[str, ...], read: Callable[[Any], Any]) -> Any:
        k = self._key(names)
        if k is None:
            return None
        v = self.body[k]
        if _is_blank(v):
            del self.body[k]
            return None
        out = read(v)
        if out is None:
            return None
        del self.body[k]
        return out

    def read(self, kind: str, names: Tuple[str, ...]) -> Any:
        if kind == _TEXT:
            return self.take(names, scalar_text)
        if kind == _INT:
            return self.take(names, _integer)
        if kind == _U32:
            return self.take(names, lambda v: (lambda i: i if i is not None and 0 <= i <= 0xFFFFFFFF else None)(_integer(v)))
        if kind == _DT:
            return self.take(names, lambda v: (lambda s: None if s is None else PbDateTime.parse(s))(scalar_text(v)))
        return self.take(names, lambda v: (lambda s: None if s is None else PbDate.parse(s))(scalar_text(v)))


def parse_event(webhook: Optional[str], header_event_type: Optional[str], header_corp_num: Optional[str],
                body: Dict[str, Any]) -> Event:
    """The event of a body (a dict, which this takes over) for a
    Pb-Webhook-Type; the headers' event type and corpNum win over the
    body's."""
    known = webhook_type(webhook) if webhook is not None else None
    if known is None or known not in _SCHEMA:
        return _unknown(known, header_event_type, header_corp_num, body)
    cls, fields = _SCHEMA[known]
    f = _Fields(body)
    # Read in every case, so that the field does not linger in extra.
    body_event = f.read(_TEXT, ("eventType",))
    body_corp = f.read(_TEXT, ("corpNum",))
    et = header_event_type if header_event_type is not None else body_event
    values = {
        "event_type": None if et is None else event_type(et),
        "corp_num": header_corp_num if header_corp_num is not None else body_corp,
    }
    for attr, kind, names in fields:
        values[attr] = f.read(kind, names)
    values["extra"] = f.body
    return cls(**values)


def _unknown(webhook: Optional[str], header_event_type: Optional[str], header_corp_num: Optional[str],
             body: Dict[str, Any]) -> UnknownEvent:
    def field_text(name: str) -> Optional[str]:
        v = body.get(name)
        if not isinstance(v, str):
            return None
        v = trim(v)
        return v or None

    et = header_event_type if header_event_type is not None else field_text("eventType")
    corp = header_corp_num if header_corp_num is not None else field_text("corpNum")
    return UnknownEvent(webhook, None if et is None else event_type(et), corp, body)


def document(e: Event) -> Optional[Tuple[str, str]]:
    """(corpNum, itemKey): the document, the unit of ordering, when known."""
    corp = e.corp_num
    if isinstance(e, UnknownEvent):
        item = e.body.get("itemKey")
        item = item if isinstance(item, str) else None
    else:
        item = getattr(e, "item_key", None)
    if corp is None or item is None:
        return None
    return corp, item


def state_dt(e: Event) -> Optional[PbDateTime]:
    """stateDT, for the products that have one."""
    if isinstance(e, (TaxInvoiceEvent, StatementEvent, CashReceiptEvent)):
        return e.state_dt
    return None
