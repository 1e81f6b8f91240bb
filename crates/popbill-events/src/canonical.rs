//! The canonical JSON form of a decoded record: one text per record that
//! the Rust, Java (`clients/java`) and Python (`clients/python`) libraries
//! all produce byte for byte, so that `tests/vectors/` can check the three
//! decoders against one another.
//!
//! The rules (`tests/vectors/README.md` has them with examples):
//!
//! - compact JSON, UTF-8, no space, object keys sorted by Unicode code
//!   point at every level (Java must not sort by UTF-16 unit);
//! - strings escaped as serde_json does: `\"`, `\\`, `\b`, `\f`, `\n`,
//!   `\r`, `\t`, other characters below U+0020 as `\u00xx` (lower-case
//!   hex), everything else (`/`, U+007F, non-ASCII) as itself;
//! - numbers of the body (`extra`, an unknown event's `body`): an integer
//!   token that fits `i64` (or `u64` when positive) as its digits; any
//!   other number (a fraction, an exponent, `-0`, a larger integer) as the
//!   nearest `f64` in serde_json's shortest form (`1.0`, `0.00001`,
//!   `1e-6`, `1e+16`, `1.2345678901234567e+20`, `-0.0`);
//! - every field is present: an absent value is `null`;
//! - instants (`time`, `received_at`, `timestamp`) in UTC with exactly
//!   three fraction digits, `2025-11-14T00:30:11.000Z`;
//! - POPBiLL dates as `{"error":…,"raw":…,"value":…}`: `value` the Korean
//!   wall-clock time with its offset (`2025-11-14T09:30:11+09:00`) or the
//!   date (`2025-11-14`), `error` one of `wrong_length`, `not_digits`,
//!   `invalid` (messages differ between date libraries, kinds do not);
//! - a decode error as its kind (`not_a_delivery`, `missing`, `empty`,
//!   `not_utf8` with `valid_up_to`, `not_json`, `not_object`, `too_deep`),
//!   without the parser's message, which no two JSON libraries share.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::event::{BodyError, Event};
use crate::record::{DecodeError, Delivery, Envelope};
use crate::time::{DateError, PbDate, PbDateTime};

/// The canonical JSON of what [`RawRecord::decode`](crate::RawRecord::decode)
/// gave, without a trailing newline.
///
/// ```
/// use popbill_events::{RawRecord, canonical_json};
///
/// let record = RawRecord::new(br#"{"receiptNum":"R1","b":1.50,"a":[true,null]}"#)
///     .with_header("ce_id", b"mid-1")
///     .with_header("pb-webhook-type", b"SMS.STATE");
/// let text = canonical_json(&record.decode());
/// assert!(text.contains(r#""body":{"a":[true,null],"b":1.5,"receiptNum":"R1"}"#), "{text}");
/// assert!(text.starts_with(r#"{"envelope":{"cloud_event":{"id":"mid-1","#), "{text}");
/// ```
pub fn canonical_json(decoded: &Result<Delivery, DecodeError>) -> String {
    let tree = match decoded {
        Ok(d) => json!({
            "envelope": envelope(&d.envelope),
            "error": null,
            "event": event(&d.event),
        }),
        Err(DecodeError::NotADelivery) => json!({
            "envelope": null,
            "error": {"kind": "not_a_delivery"},
            "event": null,
        }),
        Err(DecodeError::Body { envelope: e, error }) => json!({
            "envelope": envelope(e),
            "error": body_error(error),
            "event": null,
        }),
    };
    let mut out = String::new();
    write_sorted(&mut out, &tree);
    out
}

fn envelope(e: &Envelope) -> Value {
    let ce = &e.cloud_event;
    let headers: Vec<Value> = e
        .other_headers
        .iter()
        .map(|(name, value)| {
            let value = match value.as_deref().map(std::str::from_utf8) {
                None => Value::Null,
                Some(Ok(text)) => Value::from(text),
                // Not text: the bytes, so that nothing is lost or guessed.
                Some(Err(_)) => json!({"base64": base64(value.as_deref().unwrap_or_default())}),
            };
            json!([name, value])
        })
        .collect();
    json!({
        "cloud_event": {
            "id": ce.id,
            "spec_version": ce.spec_version,
            "source": ce.source,
            "type": ce.ty,
            "time": ce.time.map(instant),
            "subject": ce.subject,
        },
        "webhook_type": e.webhook_type,
        "mid": e.mid,
        "corp_num": e.corp_num,
        "event_type": e.event_type,
        "content_type": e.content_type,
        "key": e.key,
        "received_at": e.received_at.map(instant),
        "timestamp": e.timestamp.map(instant),
        "rejection_reason": e.rejection_reason,
        "other_headers": headers,
    })
}

fn body_error(e: &BodyError) -> Value {
    match e {
        BodyError::Missing => json!({"kind": "missing"}),
        BodyError::Empty => json!({"kind": "empty"}),
        BodyError::NotUtf8 { valid_up_to } => {
            json!({"kind": "not_utf8", "valid_up_to": valid_up_to})
        }
        BodyError::NotJson(_) => json!({"kind": "not_json"}),
        BodyError::NotObject => json!({"kind": "not_object"}),
        BodyError::TooDeep => json!({"kind": "too_deep"}),
    }
}

fn event(e: &Event) -> Value {
    let et = e.event_type().map(|t| t.as_str().to_owned());
    let mut v = match e {
        Event::TaxInvoice(x) => json!({
            "kind": "tax_invoice",
            "item_key": x.item_key,
            "nts_confirm_num": x.nts_confirm_num,
            "state_code": x.state_code,
            "state_dt": dt(&x.state_dt),
            "event_dt": dt(&x.event_dt),
            "nts_send_dt": dt(&x.nts_send_dt),
            "nts_result_dt": dt(&x.nts_result_dt),
            "nts_send_err_code": x.nts_send_err_code,
            "extra": x.extra,
        }),
        Event::Statement(x) => json!({
            "kind": "statement",
            "item_key": x.item_key,
            "invoice_num": x.invoice_num,
            "mgt_key": x.mgt_key,
            "state_code": x.state_code,
            "state_dt": dt(&x.state_dt),
            "issue_dt": dt(&x.issue_dt),
            "event_dt": dt(&x.event_dt),
            "extra": x.extra,
        }),
        Event::CashReceipt(x) => json!({
            "kind": "cash_receipt",
            "franchise_corp_num": x.franchise_corp_num,
            "item_key": x.item_key,
            "trade_date": date(&x.trade_date),
            "confirm_num": x.confirm_num,
            "nts_result_code": x.nts_result_code,
            "state_code": x.state_code,
            "state_dt": dt(&x.state_dt),
            "issue_dt": dt(&x.issue_dt),
            "nts_send_dt": dt(&x.nts_send_dt),
            "nts_result_dt": dt(&x.nts_result_dt),
            "event_dt": dt(&x.event_dt),
            "extra": x.extra,
        }),
        Event::HometaxTaxInvoice(x) => json!({
            "kind": "hometax_tax_invoice",
            "nts_confirm_num": x.nts_confirm_num,
            "write_date": date(&x.write_date),
            "issue_dt": dt(&x.issue_dt),
            "send_date": date(&x.send_date),
            "invoice_type": x.invoice_type,
            "invoicer_corp_num": x.invoicer_corp_num,
            "invoicer_corp_name": x.invoicer_corp_name,
            "invoicee_corp_num": x.invoicee_corp_num,
            "invoicee_corp_name": x.invoicee_corp_name,
            "supply_cost_total": x.supply_cost_total,
            "tax_total": x.tax_total,
            "total_amount": x.total_amount,
            "event_dt": dt(&x.event_dt),
            "extra": x.extra,
        }),
        Event::HometaxCashReceipt(x) => json!({
            "kind": "hometax_cash_receipt",
            "nts_confirm_num": x.nts_confirm_num,
            "trade_date": date(&x.trade_date),
            "trade_dt": dt(&x.trade_dt),
            "trade_type": x.trade_type,
            "trade_usage": x.trade_usage,
            "invoice_type": x.invoice_type,
            "total_amount": x.total_amount,
            "supply_cost": x.supply_cost,
            "tax": x.tax,
            "service_fee": x.service_fee,
            "event_dt": dt(&x.event_dt),
            "extra": x.extra,
        }),
        Event::Kakao(x) => json!({
            "kind": "kakao",
            "receipt_num": x.receipt_num,
            "request_num": x.request_num,
            "serial_num": x.serial_num,
            "state": x.state,
            "result": x.result,
            "alt_result": x.alt_result,
            "content_type": x.content_type,
            "send_num": x.send_num,
            "receipt_dt": dt(&x.receipt_dt),
            "reserve_dt": dt(&x.reserve_dt),
            "send_dt": dt(&x.send_dt),
            "result_dt": dt(&x.result_dt),
            "event_dt": dt(&x.event_dt),
            "extra": x.extra,
        }),
        Event::Unknown(x) => json!({
            "kind": "unknown",
            "webhook_type": x.webhook_type,
            "body": x.body,
        }),
    };
    if let Value::Object(m) = &mut v {
        m.insert("event_type".into(), et.into());
        m.insert("corp_num".into(), e.corp_num().into());
    }
    v
}

fn dt(t: &Option<PbDateTime>) -> Value {
    t.as_ref().map_or(Value::Null, |t| {
        let (value, error) = match t.datetime() {
            Ok(civil) => (Value::from(format!("{civil}+09:00")), Value::Null),
            Err(e) => (Value::Null, Value::from(date_error(&e))),
        };
        json!({"raw": t.raw(), "value": value, "error": error})
    })
}

fn date(d: &Option<PbDate>) -> Value {
    d.as_ref().map_or(Value::Null, |d| {
        let (value, error) = match d.date() {
            Ok(day) => (Value::from(day.to_string()), Value::Null),
            Err(e) => (Value::Null, Value::from(date_error(&e))),
        };
        json!({"raw": d.raw(), "value": value, "error": error})
    })
}

fn date_error(e: &DateError) -> &'static str {
    match e {
        DateError::WrongLength { .. } => "wrong_length",
        DateError::NotDigits => "not_digits",
        DateError::Invalid(_) => "invalid",
    }
}

/// UTC, milliseconds (floored), `Z`: the one form all three languages'
/// date types print alike.
fn instant(t: Timestamp) -> String {
    // Floored, before 1970 too (as_millisecond truncates toward zero:
    // 1969-12-31T23:59:59.9995Z would be 00:00:00.000).
    let ms = i64::try_from(t.as_nanosecond().div_euclid(1_000_000)).unwrap_or(i64::MAX);
    let floored = Timestamp::from_millisecond(ms).unwrap_or(t);
    floored.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Standard base64 with padding, for header values that are not text.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Writes `v` compactly with object keys sorted by code point, whatever
/// order the map keeps (serde_json's `preserve_order` feature, enabled by
/// any crate of a consumer's build, would otherwise change it).
fn write_sorted(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) => write_object(out, m),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(out, item);
            }
            out.push(']');
        }
        // Strings, numbers, booleans and null as serde_json writes them.
        // (Numbers as the text serde_json kept: with its `arbitrary_precision`
        // feature on in the build, the text as sent; tests/vectors/README.md.)
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

fn write_object(out: &mut String, m: &Map<String, Value>) {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    // Byte order of UTF-8 is code-point order.
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", Value::from(k.as_str()));
        out.push(':');
        write_sorted(out, v);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_like_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
    }

    #[test]
    fn instants_are_utc_with_milliseconds() {
        let t: Timestamp = "2025-11-14T09:30:11.123456+09:00".parse().expect("time");
        assert_eq!(instant(t), "2025-11-14T00:30:11.123Z");
        let t: Timestamp = "2025-11-14T09:30:11+09:00".parse().expect("time");
        assert_eq!(instant(t), "2025-11-14T00:30:11.000Z");
        let t: Timestamp = "1969-12-31T23:59:59.9995Z".parse().expect("time");
        assert_eq!(instant(t), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn keys_sort_by_code_point_and_numbers_keep_serde_json_form() {
        let v: Value = serde_json::from_str(
            r#"{"b":1,"a":{"\uffff":1,"😀":2,"A":3},"n":[1.0,1e300,-0,0.000001,12345678901234567890]}"#,
        )
        .expect("json");
        let mut out = String::new();
        write_sorted(&mut out, &v);
        assert_eq!(
            out,
            r#"{"a":{"A":3,"￿":1,"😀":2},"b":1,"n":[1.0,1e+300,-0.0,1e-6,12345678901234567890]}"#
        );
    }
}
