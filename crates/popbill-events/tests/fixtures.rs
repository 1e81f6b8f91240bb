//! Every sample delivery of `tests/fixtures/`, as the bridge writes it to
//! Kafka, decoded.

mod common;

use std::time::Duration;

use common::{record, samples};
use popbill_events::jiff::Timestamp;
use popbill_events::{
    BodyError, DecodeError, Event, EventType, Gate, TaxInvoiceState, Verdict, WebhookType,
};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("a timestamp")
}

#[test]
fn every_valid_delivery_decodes_to_its_typed_event() {
    let all = samples("deliveries.jsonl");
    assert_eq!(all.len(), 13, "a fixture was added: check it here");
    for s in &all {
        let rec = record(s, None);
        let d = rec
            .raw()
            .decode()
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let env = &d.envelope;
        let header = |n: &str| {
            s.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };

        // Envelope: what the bridge wrote.
        assert_eq!(Some(d.id()), header("Pb-Webhook-MID"), "{}", s.name);
        assert_eq!(env.mid.as_deref(), header("Pb-Webhook-MID"));
        assert_eq!(env.webhook_type.as_deref(), header("Pb-Webhook-Type"));
        assert_eq!(env.corp_num.as_deref(), header("Pb-Webhook-Corpnum"));
        assert_eq!(env.event_type.as_deref(), header("Pb-Webhook-EventType"));
        assert_eq!(env.content_type.as_deref(), Some("application/json"));
        assert_eq!(env.cloud_event.spec_version.as_deref(), Some("1.0"));
        assert_eq!(
            env.cloud_event.source.as_deref(),
            Some("https://www.popbill.com")
        );
        assert!(
            env.cloud_event
                .ty
                .as_deref()
                .is_some_and(|t| t.starts_with("com.popbill.webhook.")),
            "{}",
            s.name
        );
        assert_eq!(env.received_at, Some(ts("2025-11-14T10:00:00Z")));
        assert_eq!(env.timestamp, Some(ts("2025-11-14T10:00:00Z")));
        assert_eq!(d.received(), Some(ts("2025-11-14T10:00:00Z")));
        assert_eq!(env.rejection_reason, None);
        // ce_time is the eventDT, which every sample has.
        let event_dt = d.event.event_dt().expect("eventDT");
        assert_eq!(
            env.cloud_event.time,
            event_dt.timestamp().ok(),
            "{}",
            s.name
        );
        assert_eq!(
            Some(d.event.webhook_type().as_str()),
            header("Pb-Webhook-Type")
        );
        assert!(d.event.event_type().is_some(), "{}", s.name);
        assert_eq!(d.event.corp_num(), header("Pb-Webhook-Corpnum"));

        // The key and ce_subject say the same as the event.
        match d.document() {
            Some(doc) => {
                assert_eq!(env.key.as_deref(), Some(doc.to_string().as_str()));
                assert_eq!(
                    env.cloud_event.subject.as_deref(),
                    Some(doc.item_key.as_str())
                );
            }
            None => assert_eq!(env.key.as_deref(), Some(d.id())),
        }

        // Every date in every sample is a real one.
        if let Some(t) = d.state_dt() {
            assert!(t.is_valid(), "{}: {t:?}", s.name);
        }

        per_sample(&s.name, &d.event);
    }
}

/// What each sample must give, field by field where it matters.
fn per_sample(name: &str, event: &Event) {
    match (name, event) {
        ("taxinvoice-issue", Event::TaxInvoice(e)) => {
            assert_eq!(e.event_type, Some(EventType::Issue));
            assert_eq!(e.state(), Some(TaxInvoiceState::Issued));
            assert_eq!(e.item_key.as_deref(), Some("025111409301000001"));
            assert_eq!(
                e.nts_confirm_num.as_deref(),
                Some("202511144100001234567890")
            );
            // Sent empty: absent, not invalid.
            assert_eq!(e.nts_send_dt, None);
            assert_eq!(e.nts_result_dt, None);
            assert_eq!(e.nts_send_err_code, None);
            assert_eq!(e.nts_succeeded(), None);
            assert_eq!(
                e.state_dt.as_ref().map(|t| t.timestamp()),
                Some(Ok(ts("2025-11-14T00:30:10Z")))
            );
            assert!(e.extra.is_empty(), "{:?}", e.extra);
        }
        ("taxinvoice-nts-filed", Event::TaxInvoice(e)) => {
            assert_eq!(e.event_type, Some(EventType::Nts));
            assert_eq!(e.state(), Some(TaxInvoiceState::Filed));
            assert_eq!(e.nts_succeeded(), Some(true));
            assert_eq!(
                e.nts_result_dt.as_ref().map(|t| t.raw()),
                Some("20251115090711")
            );
            assert!(e.nts_send_dt.as_ref().is_some_and(|t| t.is_valid()));
        }
        ("taxinvoice-nts-failed", Event::TaxInvoice(e)) => {
            assert_eq!(e.state(), Some(TaxInvoiceState::FilingFailed));
            assert_eq!(e.nts_succeeded(), Some(false));
            assert_eq!(e.nts_send_err_code.as_deref(), Some("SYN004"));
        }
        ("taxinvoice-cancel-issue", Event::TaxInvoice(e)) => {
            assert_eq!(e.event_type, Some(EventType::CancelIssue));
            assert_eq!(e.state(), Some(TaxInvoiceState::Cancelled));
        }
        ("taxinvoice-open", Event::TaxInvoice(e)) => {
            assert_eq!(e.event_type, Some(EventType::Open));
        }
        ("taxinvoice-closedown", Event::TaxInvoice(e)) => {
            assert_eq!(e.event_type, Some(EventType::Closedown));
        }
        ("taxinvoice-manual-rerun", Event::TaxInvoice(e)) => {
            assert_eq!(e.event_type, Some(EventType::Manual));
            assert_eq!(e.state_code, Some(304));
        }
        ("statement-issue", Event::Statement(e)) => {
            assert_eq!(e.event_type, Some(EventType::Issue));
            assert_eq!(e.state_code, Some(300), "stateCode sent as a string");
            assert_eq!(e.mgt_key.as_deref(), Some("ST-2025-000321"));
            assert_eq!(e.invoice_num.as_deref(), Some("202511140000000000000321"));
            assert!(e.issue_dt.as_ref().is_some_and(|t| t.is_valid()));
            assert!(e.extra.is_empty(), "{:?}", e.extra);
        }
        ("cashbill-nts", Event::CashReceipt(e)) => {
            assert_eq!(e.event_type, Some(EventType::Nts));
            assert_eq!(e.state_code, Some(304), "stateCode sent as a number");
            assert_eq!(e.franchise_corp_num.as_deref(), Some("6798700433"));
            assert_eq!(e.confirm_num.as_deref(), Some("TB0000123"));
            assert_eq!(e.nts_result_code.as_deref(), Some("0000"));
            assert_eq!(
                e.trade_date
                    .as_ref()
                    .map(|d| d.date().map(|d| d.to_string())),
                Some(Ok("2025-11-14".to_owned()))
            );
            assert!(e.extra.is_empty(), "{:?}", e.extra);
        }
        ("hometax-taxinvoice-crawl", Event::HometaxTaxInvoice(e)) => {
            // No event-type header: the body's eventType.
            assert_eq!(e.event_type, Some(EventType::HtTaxinvoice));
            // No corpNum in the body: the header's.
            assert_eq!(e.corp_num.as_deref(), Some("1234567890"));
            assert_eq!(
                e.nts_confirm_num.as_deref(),
                Some("202511134100005555555555")
            );
            assert_eq!(e.invoice_type, Some(101));
            assert_eq!(e.invoicer_corp_name.as_deref(), Some("주식회사 한빛상사"));
            assert_eq!(e.invoicee_corp_name.as_deref(), Some("(주)팝빌테스트"));
            assert_eq!(e.supply_cost_total, Some(1_000_000));
            assert_eq!(e.tax_total, Some(100_000));
            assert_eq!(e.total_amount, Some(1_100_000));
            assert!(e.write_date.as_ref().is_some_and(|d| d.is_valid()));
            assert!(e.send_date.as_ref().is_some_and(|d| d.is_valid()));
            assert!(e.extra.is_empty(), "{:?}", e.extra);
        }
        ("hometax-cashbill-crawl", Event::HometaxCashReceipt(e)) => {
            assert_eq!(e.event_type, Some(EventType::HtCashbill));
            assert_eq!(e.trade_type.as_deref(), Some("승인거래"));
            assert_eq!(e.trade_usage.as_deref(), Some("지출증빙용"));
            assert_eq!(e.invoice_type.as_deref(), Some("매입"));
            assert_eq!(e.total_amount, Some(55_000));
            assert_eq!(e.supply_cost, Some(50_000));
            assert_eq!(e.tax, Some(5_000));
            assert_eq!(e.service_fee, Some(0));
            assert!(e.trade_dt.as_ref().is_some_and(|t| t.is_valid()));
            assert!(e.extra.is_empty(), "{:?}", e.extra);
        }
        ("kakao-result", Event::Kakao(e)) => {
            assert_eq!(e.event_type, Some(EventType::Result));
            assert_eq!(e.receipt_num.as_deref(), Some("025111414000000001"));
            assert_eq!(e.serial_num, Some(1));
            assert_eq!(e.state, Some(3));
            assert_eq!(e.result, Some(3000));
            // null, "" and "": absent.
            assert_eq!(e.alt_result, None);
            assert_eq!(e.request_num, None);
            assert_eq!(e.reserve_dt, None);
            assert!(e.result_dt.as_ref().is_some_and(|t| t.is_valid()));
            assert!(e.extra.is_empty(), "{:?}", e.extra);
        }
        ("taxinvoice-with-auth-and-custom-header", Event::TaxInvoice(e)) => {
            assert_eq!(e.event_type, Some(EventType::Issue));
        }
        (name, event) => panic!("{name}: unexpected {event:?}"),
    }
}

#[test]
fn custom_headers_are_kept_and_credentials_never_were() {
    let s = samples("deliveries.jsonl")
        .into_iter()
        .find(|s| s.name == "taxinvoice-with-auth-and-custom-header")
        .expect("sample");
    let rec = record(&s, None);
    let d = rec.raw().decode().expect("decodes");
    assert_eq!(
        d.envelope.other_headers,
        [("pb-custom-tenant".to_owned(), Some(b"acme".to_vec()))]
    );
}

/// What each bad delivery gives once it is on a topic (the dead-letter
/// topic for the malformed ones). Never a panic.
#[test]
fn bad_deliveries_give_a_clear_error_or_an_event() {
    let all = samples("bad-deliveries.jsonl");
    assert_eq!(all.len(), 12, "a fixture was added: check it here");
    for s in &all {
        let rec = record(s, Some("not_json"));
        let got = rec.raw().decode();
        let body_error = match &got {
            Err(DecodeError::Body { envelope, error }) => {
                // The envelope survives a bad body: the consumer can
                // still deduplicate, log and dead-letter it.
                assert_eq!(
                    envelope.cloud_event.id,
                    "025111499999-bad0000000000000000001"
                );
                assert_eq!(envelope.rejection_reason.as_deref(), Some("not_json"));
                Some(error.clone())
            }
            Err(e) => panic!("{}: {e}", s.name),
            Ok(_) => None,
        };
        match s.name.as_str() {
            "not-json" | "truncated-json" => {
                assert!(
                    matches!(body_error, Some(BodyError::NotJson(_))),
                    "{}: {got:?}",
                    s.name
                )
            }
            "json-array" => assert_eq!(body_error, Some(BodyError::NotObject)),
            "empty-body" | "get-method" => assert_eq!(body_error, Some(BodyError::Empty)),
            "invalid-utf8" => {
                assert_eq!(body_error, Some(BodyError::NotUtf8 { valid_up_to: 0 }))
            }
            "deep-nesting" => assert_eq!(body_error, Some(BodyError::TooDeep)),
            "missing-mid" => {
                let d = got.expect("decodes");
                assert!(d.id().starts_with("content:"), "{}", d.id());
                assert_eq!(d.envelope.mid, None);
                assert!(matches!(d.event, Event::TaxInvoice(_)));
            }
            "topic-injection" => {
                let d = got.expect("decodes");
                assert_eq!(
                    d.event.event_type(),
                    Some(&EventType::Other("../../__consumer_offsets".into()))
                );
            }
            "wrong-content-type" | "wrong-credentials" | "oversized" => {
                let d = got.expect("decodes");
                assert!(matches!(d.event, Event::TaxInvoice(_)), "{}", s.name);
                if s.name == "oversized" {
                    assert!(d.event.extra().contains_key("memo"));
                }
            }
            other => panic!("{other}: no expectation written"),
        }
        if let Some(e) = body_error {
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn a_record_without_ce_id_is_not_a_delivery() {
    // A ledger record: key = digest, value = lines, no headers.
    let rec = popbill_events::RawRecord::new(b"00ff 0 12 popbill.taxinvoice.state.issue mid-1\n")
        .with_key(b"00ff");
    assert_eq!(rec.decode(), Err(DecodeError::NotADelivery));

    // A delivery record without a value (a tombstone): a clear error.
    let rec = popbill_events::RawRecord {
        headers: vec![("ce_id", Some(b"mid-1".as_slice()))],
        ..Default::default()
    };
    match rec.decode() {
        Err(DecodeError::Body { envelope, error }) => {
            assert_eq!(envelope.cloud_event.id, "mid-1");
            assert_eq!(error, BodyError::Missing);
            assert_eq!(
                DecodeError::Body { envelope, error }.to_string(),
                "delivery mid-1: record has no value"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_a_webhook_type_the_event_is_unknown_with_its_json() {
    let s = &samples("deliveries.jsonl")[0];
    let mut rec = record(s, None);
    rec.headers.retain(|(n, _)| n != "pb-webhook-type");
    let d = rec.raw().decode().expect("decodes");
    let Event::Unknown(u) = &d.event else {
        panic!("{:?}", d.event)
    };
    assert_eq!(u.webhook_type, None);
    assert_eq!(u.event_type, Some(EventType::Issue));
    assert_eq!(u.body["stateCode"], 300);
    assert_eq!(u.body.len(), 10, "the whole body");
    assert_eq!(
        d.document().map(|k| k.item_key).as_deref(),
        Some("025111409301000001")
    );
}

#[test]
fn an_unknown_webhook_type_keeps_its_name() {
    let e = Event::from_body("FAX.STATE", br#"{"receiptNum":"R1","eventType":"RESULT"}"#)
        .expect("an object");
    assert_eq!(e.webhook_type(), WebhookType::Other("FAX.STATE".into()));
    assert_eq!(e.event_type(), Some(&EventType::Result));
}

/// All deliveries through a gate twice, then out of order: one apply each,
/// duplicates skipped, the late `Issue` of an invoice stale.
#[test]
fn the_gate_deduplicates_and_orders_the_samples() {
    let recs: Vec<_> = samples("deliveries.jsonl")
        .iter()
        .map(|s| record(s, None))
        .collect();
    let ds: Vec<_> = recs
        .iter()
        .map(|r| r.raw().decode().expect("decodes"))
        .collect();
    let mut gate = Gate::new(Duration::from_secs(48 * 3600));
    let by_name = |n: &str| {
        samples("deliveries.jsonl")
            .iter()
            .position(|s| s.name == n)
            .expect("sample")
    };
    // In file order, invoice 025111409301000001 is filed (NTS, stateDT
    // 2025-11-15 09:07:11) before the OPEN and CLOSEDOWN events that carry
    // the stateDT of its issue: those two are stale. The MANUAL re-run
    // carries the NTS's stateDT: equal is not older, it applies.
    let stale = [by_name("taxinvoice-open"), by_name("taxinvoice-closedown")];
    for (i, d) in ds.iter().enumerate() {
        let want = if stale.contains(&i) {
            Verdict::Stale {
                applied: ts("2025-11-15T00:07:11Z"),
            }
        } else {
            Verdict::Apply
        };
        assert_eq!(gate.admit(d), want, "{}", d.id());
    }
    for d in &ds {
        assert_eq!(gate.admit(d), Verdict::Duplicate, "{}", d.id());
    }
    assert_eq!(gate.remembered_ids(), 13);

    // A fresh consumer that sees the NTS first, then a re-sent Issue with a
    // new MID (a manual re-run): stale.
    let mut gate = Gate::new(Duration::from_secs(48 * 3600));
    assert_eq!(
        gate.admit(&ds[by_name("taxinvoice-nts-filed")]),
        Verdict::Apply
    );
    let rec = &recs[by_name("taxinvoice-issue")];
    let mut rerun = rec.raw();
    rerun.headers.retain(|(n, _)| *n != "ce_id");
    rerun.headers.push(("ce_id", Some(b"another-mid")));
    let issue = rerun.decode().expect("decodes");
    assert_eq!(
        gate.admit(&issue),
        Verdict::Stale {
            applied: ts("2025-11-15T00:07:11Z")
        }
    );
    // OPEN carries the Issue's stateDT: older than the NTS, stale too.
    assert!(matches!(
        gate.admit(&ds[by_name("taxinvoice-open")]),
        Verdict::Stale { .. }
    ));
    // Another invoice is not affected.
    assert_eq!(
        gate.admit(&ds[by_name("taxinvoice-cancel-issue")]),
        Verdict::Apply
    );
}
