"""Decoding, dates, JSON and the gate beyond the vectors: the cases where
Python's own parsing differs from serde_json's and must be brought in
line, and the gate's window, cap and staleness (crates/popbill-events
src/gate.rs has the same tests)."""

from datetime import timedelta

import pytest

from popbill_events import (BodyError, DateError, Gate, InMemoryGateStore, NotADelivery, PbDate, PbDateTime,
                            RawRecord, TaxInvoiceEvent, UnknownEvent)
from popbill_events._json import format_float, loads, JsonError

T0 = 1_763_114_400_000


def delivery(mid, item, state_dt, at_secs):
    body = f'{{"corpNum":"1234567890","itemKey":"{item}","stateDT":"{state_dt}"}}'.encode()
    return RawRecord(value=body, headers=[("ce_id", mid.encode()), ("pb-webhook-type", b"TAXINVOICE.STATE")],
                     timestamp_millis=T0 + at_secs * 1000).decode()


def test_floats_print_as_serde_json_prints_them():
    for f, text in [(1.0, "1.0"), (1e300, "1e+300"), (0.1, "0.1"), (1e16, "1e+16"), (1e15, "1000000000000000.0"),
                    (0.00001, "0.00001"), (1e-6, "1e-6"), (-0.0, "-0.0"), (-1.25e-5, "-0.0000125"),
                    (123456789012345678901.0, "1.2345678901234568e+20"), (2.5, "2.5")]:
        assert format_float(f) == text


def test_json_that_python_accepts_and_serde_json_does_not_is_refused():
    for text in ["NaN", "[Infinity]", "1e400", '"\\ud800"', "[" * 128 + "]" * 128]:
        with pytest.raises(JsonError):
            loads(text)
    assert loads("[" * 127 + "]" * 127) is not None
    assert loads("-0") == 0 and str(loads("-0")) == "-0.0"
    assert isinstance(loads("18446744073709551615"), int)
    assert isinstance(loads("18446744073709551616"), float)


def test_body_errors_have_the_kinds_of_the_rust_crate():
    def kind(value):
        try:
            RawRecord(value=value, headers=[("ce_id", b"m")]).decode()
        except BodyError as e:
            return e.kind, e.valid_up_to
        return None

    assert kind(None) == ("missing", None)
    assert kind(b" \r\n") == ("empty", None)
    assert kind(b"\x0b") == ("not_json", None), "vertical tab is not ASCII white space to Rust"
    assert kind(b'{"a":"\xff"}') == ("not_utf8", 6)
    assert kind(b"[1]") == ("not_object", None)
    assert kind(b"[" * 200 + b"]" * 200) == ("too_deep", None)
    with pytest.raises(NotADelivery):
        RawRecord(value=b"{}").decode()


def test_fields_are_read_tolerantly_and_untyped_values_stay_in_extra():
    body = b'{"corpNum":" 1 ","itemKey":"K","stateCode":"1,100","ntsConfirmNum":{"x":1},"STATEDT":"20251114093010","eventDT":""}'
    d = RawRecord(value=body, headers=[("ce_id", b"m"), ("pb-webhook-type", b"taxinvoice.state")]).decode()
    e = d.event
    assert isinstance(e, TaxInvoiceEvent)
    assert (e.corp_num, e.state_code, e.state_dt.raw, e.event_dt) == ("1", 1100, "20251114093010", None)
    assert e.extra == {"ntsConfirmNum": {"x": 1}}
    u = RawRecord(value=b'{"a":1}', headers=[("ce_id", b"m"), ("pb-webhook-type", b" FAX.STATE ")]).decode()
    assert isinstance(u.event, UnknownEvent) and u.event.webhook_type == "FAX.STATE"


def test_dates_are_korean_time_and_impossible_ones_keep_their_error():
    t = PbDateTime.parse("20251114093011")
    assert t.datetime().isoformat() == "2025-11-14T09:30:11+09:00"
    assert t.datetime().timestamp() == 1763080211
    for bad, kind in [("20250230093011", "invalid"), ("20250229093011", "invalid"), ("20251114240000", "invalid"),
                      ("20251114093060", "invalid"), ("2025111409301", "wrong_length"),
                      ("２０２５１１１４０９３０", "wrong_length"), ("2025-11-14T09:", "not_digits")]:
        assert PbDateTime.parse(bad).error == kind, bad
    assert PbDateTime.parse("20240229120000").is_valid
    assert PbDate.parse("00000229").is_valid, "year 0 is a leap year, as in jiff and java.time"
    assert PbDate.parse("20251301").error == "invalid"


def test_equal_state_dt_applies_older_is_stale_and_its_copy_a_duplicate():
    g = Gate(InMemoryGateStore(timedelta(seconds=60)))
    assert g.admit(delivery("a", "K", "20251114093010", 0)).is_apply
    assert g.admit(delivery("b", "K", "20251114093010", 1)).is_apply
    assert g.admit(delivery("c", "K", "20251114093009", 2)).is_stale
    assert g.admit(delivery("c", "K", "20251114093009", 3)).is_duplicate
    assert g.admit(delivery("d", "K", "20250230093010", 4)).is_apply, "an invalid stateDT never orders"
    assert g.check(delivery("a", "K", "20251114093010", 5)).is_duplicate


def test_ids_and_documents_expire_after_the_window_and_the_count_is_capped():
    store = InMemoryGateStore(timedelta(seconds=60))
    g = Gate(store)
    g.admit(delivery("a", "K", "20251114093010", 0))
    g.admit(delivery("z", "other", "20251114093010", 61))
    assert (store.remembered_ids(), store.remembered_documents()) == (1, 1)
    assert g.check(delivery("a", "K", "20251114093000", 62)).is_apply

    store = InMemoryGateStore(timedelta(hours=1), max_entries=2)
    g = Gate(store)
    for i, mid in enumerate("abc"):
        g.admit(delivery(mid, mid, "20251114093010", i))
    assert (store.remembered_ids(), store.remembered_documents()) == (2, 2)
    assert g.check(delivery("a", "a", "20251114093010", 4)).is_apply
    assert g.check(delivery("c", "c", "20251114093010", 4)).is_duplicate


def test_a_document_touched_again_is_kept():
    g = Gate(InMemoryGateStore(timedelta(seconds=60)))
    g.admit(delivery("a", "K", "20251114093010", 0))
    g.admit(delivery("b", "K", "20251114093020", 50))
    g.admit(delivery("c", "other", "20251114093010", 70))
    assert g.check(delivery("d", "K", "20251114093015", 71)).is_stale


def test_year_zero_and_one_times_are_instants_as_in_rust():
    from popbill_events.record import parse_instant
    # 0001-01-01T08:59:59+09:00 is in year 0 in UTC: before datetime.min.
    assert parse_instant("0001-01-01T08:59:59+09:00").iso() == "0000-12-31T23:59:59.000Z"
    assert parse_instant("0000-01-01T00:00:00+09:00").iso() == "-001-12-31T15:00:00.000Z"
    # Past jiff's last instant (9999-12-30T22:00Z): no time, as in Rust.
    assert parse_instant("9999-12-30T22:00:00.999Z") is not None
    assert parse_instant("9999-12-30T22:00:01Z") is None
    # Sub-millisecond fractions floor, before 1970 too.
    assert parse_instant("1969-12-31T23:59:59.9999Z").epoch_millis == -1
    t = PbDateTime.parse("00000101000000")
    assert t.is_valid and t.instant().iso() == "-001-12-31T15:00:00.000Z"


def test_a_truncated_deeply_nested_body_is_too_deep_as_in_serde_json():
    with pytest.raises(JsonError) as e:
        loads("[" * 200)
    assert e.value.too_deep
    # An error before the 128th level is not_json there too.
    with pytest.raises(JsonError) as e:
        loads("[1,}" + "[" * 200)
    assert not e.value.too_deep
    # Brackets inside strings are not nesting.
    with pytest.raises(JsonError) as e:
        loads('["' + "[" * 200 + '"')
    assert not e.value.too_deep


def test_every_valid_date_time_has_an_iso_form_and_an_instant():
    for raw in ("00000101000000", "00010101000000", "99991231235959", "20251114093011"):
        t = PbDateTime.parse(raw)
        assert t.is_valid
        assert t.iso().startswith(raw[:4])
        assert t.instant() is not None
    with pytest.raises(DateError):
        PbDateTime.parse("00000101000000").datetime()
