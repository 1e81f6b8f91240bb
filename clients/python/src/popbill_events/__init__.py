"""Typed POPBiLL webhook events, read from the Kafka records that
popbill-bridge writes: the Python side of crates/popbill-events, decoding
every record to the same values (tests/vectors/ holds them as the
contract).

    from popbill_events import Gate, RawRecord

    delivery = RawRecord.from_confluent(msg).decode()
    if gate.admit(delivery).is_apply:
        handle(delivery.event)

Read the topics with ``isolation.level=read_committed``
(CONSUMER_PROPERTIES): the bridge writes each record in a Kafka
transaction, and a reader of uncommitted records also sees the records of
transactions it aborted (their deliveries were answered 503 and sent again).
"""

from .canonical import canonical_json
from .events import (CashReceiptEvent, Event, HometaxCashReceiptEvent, HometaxTaxInvoiceEvent,
                     KakaoEvent, StatementEvent, TaxInvoiceEvent, UnknownEvent)
from .gate import APPLY, DUPLICATE, Gate, GateStore, InMemoryGateStore, Verdict
from .record import (CONSUMER_PROPERTIES, RECEIVED_AT, REDRIVEN_FROM, REJECTION_REASON, BodyError,
                     CloudEvent, DecodeError, Delivery, Envelope, NotADelivery, RawRecord, decode)
from .time import KST, DateError, Instant, PbDate, PbDateTime

__all__ = [
    "APPLY", "BodyError", "CONSUMER_PROPERTIES", "CashReceiptEvent", "CloudEvent", "DUPLICATE",
    "DateError", "DecodeError", "Delivery", "Envelope", "Event", "Gate", "GateStore",
    "HometaxCashReceiptEvent", "HometaxTaxInvoiceEvent", "InMemoryGateStore", "Instant", "KST",
    "KakaoEvent",
    "NotADelivery", "PbDate", "PbDateTime", "RECEIVED_AT", "REDRIVEN_FROM", "REJECTION_REASON",
    "RawRecord", "StatementEvent", "TaxInvoiceEvent", "UnknownEvent", "Verdict", "canonical_json",
    "decode",
]
