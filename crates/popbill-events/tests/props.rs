//! Property tests: no input panics; every JSON object is an event; dates
//! agree with the calendar; the gate never applies an id twice nor moves a
//! document back in time.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use popbill_events::jiff::Timestamp;
use popbill_events::serde_json::{self, Map, Value};
use popbill_events::time::{parse_date, parse_datetime};
use popbill_events::{DecodeError, Event, Gate, PbDateTime, RawRecord, Verdict};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

const WEBHOOK_TYPES: &[&str] = &[
    "TAXINVOICE.STATE",
    "STATEMENT.STATE",
    "CASHBILL.STATE",
    "HT.TAXINVOICEXML",
    "HT.CASHBILL",
    "KAKAO.STATE",
    "taxinvoice.state",
    "SMS.STATE",
    "",
];

const FIELDS: &[&str] = &[
    "corpNum",
    "itemKey",
    "eventType",
    "stateCode",
    "stateDT",
    "eventDT",
    "issueDT",
    "ntsConfirmNum",
    "ntsconfirmNum",
    "NTSCONFIRMNUM",
    "ntssendDT",
    "ntsresultDT",
    "ntssendErrCode",
    "tradeDate",
    "tradeDT",
    "writeDate",
    "sendDate",
    "invoiceType",
    "totalAmount",
    "supplyCostTotal",
    "receiptNum",
    "serialNum",
    "state",
    "result",
    "altResult",
    "mgtKey",
];

const HEADERS: &[&str] = &[
    "ce_id",
    "CE_ID",
    "ce_time",
    "ce_type",
    "ce_subject",
    "pb-webhook-type",
    "Pb-Webhook-Type",
    "pb-webhook-mid",
    "pb-webhook-corpnum",
    "pb-webhook-eventtype",
    "popbill-bridge-received-at",
    "popbill-bridge-rejection-reason",
    "content-type",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
        "[0-9]{8}|[0-9]{14}| *[0-9,]{1,12} *".prop_map(Value::from),
        prop::sample::select(WEBHOOK_TYPES).prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map("\\PC{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(field_name(), json(), 0..12).prop_map(|m| m.into_iter().collect())
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(HEADERS).prop_map(str::to_owned),
        1 => "\\PC{0,16}",
    ]
}

fn header_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        2 => vec(any::<u8>(), 0..24).prop_map(Some),
        2 => prop::sample::select(WEBHOOK_TYPES).prop_map(|s| Some(s.as_bytes().to_vec())),
        2 => "[0-9T:+-]{0,30}|2025-11-14T09:30:11\\+09:00".prop_map(|s| Some(s.into_bytes())),
    ]
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..200),
        object().prop_map(|o| serde_json::to_vec(&o).unwrap_or_default()),
        json().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        // A valid object, cut short or with a stray byte.
        (object(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(o, i, b)| {
            let mut v = serde_json::to_vec(&o).unwrap_or_default();
            if !v.is_empty() {
                let at = i.index(v.len());
                v[at] = b;
            }
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any record: no panic; the outcome is consistent with the headers.
    #[test]
    fn decoding_any_record_never_panics(
        value in prop::option::of(body_bytes()),
        key in prop::option::of(vec(any::<u8>(), 0..40)),
        headers in vec((header_name(), header_value()), 0..12),
        timestamp in prop::option::of(any::<i64>()),
    ) {
        let rec = RawRecord {
            key: key.as_deref(),
            value: value.as_deref(),
            headers: headers.iter().map(|(n, v)| (n.as_str(), v.as_deref())).collect(),
            timestamp_millis: timestamp,
        };
        let has_id = rec.header("ce_id").is_some() || rec.header("pb-webhook-mid").is_some();
        match rec.decode() {
            Ok(d) => {
                prop_assert!(has_id);
                prop_assert!(!d.id().is_empty());
                // Reading every accessor is safe too.
                let _ = (d.document(), d.state_dt().map(|t| t.timestamp()), d.received());
                let _ = (d.event.event_dt(), d.event.extra().len(), d.event.webhook_type());
                let _ = format!("{d:?}");
            }
            Err(DecodeError::NotADelivery) => prop_assert!(!has_id),
            Err(DecodeError::Body { error, .. }) => {
                prop_assert!(has_id);
                prop_assert!(!error.to_string().is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    /// Every JSON object is an event, whatever its fields hold, for every
    /// webhook type; nothing is lost (typed, or kept in `extra`).
    #[test]
    fn every_json_object_is_an_event(
        webhook_type in prop::sample::select(WEBHOOK_TYPES),
        body in object(),
    ) {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        // What the bytes say (floats do not always survive a round trip).
        let body: Map<String, Value> = serde_json::from_slice(&bytes).unwrap_or_default();
        let event = Event::from_body(webhook_type, &bytes);
        prop_assert!(event.is_ok(), "{event:?}");
        if let Ok(event) = event {
            // Untyped fields stay, typed ones leave: `extra` never holds a
            // key the body did not have.
            for k in event.extra().keys() {
                prop_assert!(body.contains_key(k));
            }
            if let Event::Unknown(u) = &event {
                prop_assert_eq!(&u.body, &body);
            }
        }
    }

    /// Arbitrary bytes as a body: an event or an error, never a panic; an
    /// event only from a JSON object.
    #[test]
    fn any_body_bytes_never_panic(
        webhook_type in prop::sample::select(WEBHOOK_TYPES),
        body in body_bytes(),
    ) {
        if Event::from_body(webhook_type, &body).is_ok() {
            let v: Result<Map<String, Value>, _> = serde_json::from_slice(&body);
            prop_assert!(v.is_ok());
        }
    }

    /// 14 digits: valid exactly when the calendar says so.
    #[test]
    fn date_times_agree_with_the_calendar(s in "[0-9]{14}") {
        let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(u32::MAX);
        let (y, mo, d, h, mi, se) = (n(0..4), n(4..6), n(6..8), n(8..10), n(10..12), n(12..14));
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days = match mo {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        let valid = (1..=days).contains(&d) && h < 24 && mi < 60 && se < 60;
        prop_assert_eq!(parse_datetime(&s).is_ok(), valid, "{}", s);
        prop_assert_eq!(parse_date(&s[..8]).is_ok(), days > 0 && (1..=days).contains(&d));
        let t = PbDateTime::parse(&s);
        prop_assert_eq!(t.timestamp().is_ok(), valid);
        if let Ok(ts) = t.timestamp() {
            // Korean time is UTC+9: formatting the instant in +09:00 gives
            // the digits back.
            let back = ts.to_zoned_datetime(popbill_events::jiff::tz::TimeZone::fixed(popbill_events::time::KST))
                .strftime("%Y%m%d%H%M%S")
                .to_string();
            prop_assert_eq!(back, s);
        }
    }

    /// Any text as a date: no panic.
    #[test]
    fn any_text_as_a_date_never_panics(s in "\\PC{0,20}|[0-9]{13,15}") {
        let t = PbDateTime::parse(&s);
        let _ = (t.timestamp(), t.zoned(), format!("{t:?}"), parse_date(&s));
    }

    /// Random streams with repeats and disorder: an id applies at most
    /// once, and a document's applied stateDT never goes back.
    #[test]
    fn the_gate_applies_once_and_never_goes_back(
        events in vec((0u8..8, 0u8..3, 0u8..6, 0i64..600), 1..80),
        cap in 1usize..20,
    ) {
        let mut gate = Gate::new(Duration::from_secs(3600)).with_max_entries(cap);
        let mut applied_ids = HashSet::new();
        let mut applied_state: HashMap<String, Timestamp> = HashMap::new();
        for (mid, doc, state, at) in events {
            let body = format!(
                r#"{{"corpNum":"1234567890","itemKey":"D{doc}","stateDT":"2025111409{:02}00"}}"#,
                state * 5
            );
            let id = format!("mid-{mid}");
            let d = RawRecord::new(body.as_bytes())
                .with_header("ce_id", id.as_bytes())
                .with_header("pb-webhook-type", b"TAXINVOICE.STATE")
                .with_timestamp_millis(1_763_114_400_000 + at * 1000)
                .decode()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let state_dt = d.state_dt().and_then(|t| t.timestamp().ok());
            let verdict = gate.admit(&d);
            if verdict == Verdict::Apply {
                // With the cap at least the number of ids (8) and documents
                // (3), nothing is forgotten: the gate is exact.
                if cap >= 8 {
                    prop_assert!(applied_ids.insert(id.clone()), "{} applied twice", id);
                    let key = format!("D{doc}");
                    if let (Some(prev), Some(now)) = (applied_state.get(&key), state_dt) {
                        prop_assert!(now >= *prev, "document {} went back", key);
                    }
                    if let Some(now) = state_dt {
                        let e = applied_state.entry(key).or_insert(now);
                        *e = (*e).max(now);
                    }
                }
            }
            prop_assert!(gate.remembered_ids() <= cap);
            prop_assert!(gate.remembered_documents() <= cap);
        }
    }
}
