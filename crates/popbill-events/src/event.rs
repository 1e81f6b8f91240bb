//! Typed webhook events, one per POPBiLL product, and [`Event::Unknown`] for
//! the rest.
//!
//! The webhook type (`Pb-Webhook-Type`) picks the variant; the body fills
//! it. Every field is optional, because POPBiLL may leave any of them out;
//! fields not typed here (undocumented ones, or values of an unexpected
//! shape) are kept in each event's `extra` map. An unknown webhook type is
//! never an error: it gives [`Event::Unknown`] with the whole body.

use std::fmt;

use serde_json::{Map, Value};

use crate::fields::Fields;
use crate::time::PbDate;
use crate::time::PbDateTime;

/// The `Pb-Webhook-Type` of a delivery: which product and stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WebhookType {
    /// `TAXINVOICE.STATE`: e-tax invoice state changes.
    TaxInvoice,
    /// `STATEMENT.STATE`: electronic statements.
    Statement,
    /// `CASHBILL.STATE`: cash receipts.
    CashReceipt,
    /// `HT.TAXINVOICEXML`: tax invoices collected from Hometax.
    HometaxTaxInvoice,
    /// `HT.CASHBILL`: cash receipts collected from Hometax.
    HometaxCashReceipt,
    /// `KAKAO.STATE`: KakaoTalk message results.
    Kakao,
    /// Any other value (SMS, fax, a future product), as sent.
    Other(String),
}

impl WebhookType {
    /// Reads a `Pb-Webhook-Type` value (ASCII case ignored).
    ///
    /// ```
    /// use popbill_events::WebhookType;
    /// assert_eq!(WebhookType::parse("TAXINVOICE.STATE"), WebhookType::TaxInvoice);
    /// assert_eq!(WebhookType::parse("SMS.STATE").as_str(), "SMS.STATE");
    /// ```
    pub fn parse(s: &str) -> WebhookType {
        let s = s.trim();
        const KNOWN: [(&str, WebhookType); 6] = [
            ("TAXINVOICE.STATE", WebhookType::TaxInvoice),
            ("STATEMENT.STATE", WebhookType::Statement),
            ("CASHBILL.STATE", WebhookType::CashReceipt),
            ("HT.TAXINVOICEXML", WebhookType::HometaxTaxInvoice),
            ("HT.CASHBILL", WebhookType::HometaxCashReceipt),
            ("KAKAO.STATE", WebhookType::Kakao),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| s.eq_ignore_ascii_case(name))
            .map(|(_, t)| t)
            .unwrap_or_else(|| WebhookType::Other(s.to_owned()))
    }

    /// The header value POPBiLL sends for this type.
    pub fn as_str(&self) -> &str {
        match self {
            WebhookType::TaxInvoice => "TAXINVOICE.STATE",
            WebhookType::Statement => "STATEMENT.STATE",
            WebhookType::CashReceipt => "CASHBILL.STATE",
            WebhookType::HometaxTaxInvoice => "HT.TAXINVOICEXML",
            WebhookType::HometaxCashReceipt => "HT.CASHBILL",
            WebhookType::Kakao => "KAKAO.STATE",
            WebhookType::Other(s) => s,
        }
    }
}

impl fmt::Display for WebhookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The event type (`Pb-Webhook-EventType`, or the body's `eventType`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// `Issue`: issued (tax invoice: issued and signed by the seller).
    Issue,
    /// `CancelIssue`: tax invoice issuance cancelled.
    CancelIssue,
    /// `Cancel`: statement cancelled.
    Cancel,
    /// `CLOSEDOWN`: the buyer's business-status check finished.
    Closedown,
    /// `NTS`: filing with the National Tax Service moved on.
    Nts,
    /// `OPEN`: the buyer opened the document from the e-mail.
    Open,
    /// `MANUAL`: a delivery re-run by hand from the POPBiLL site.
    Manual,
    /// `RESULT`: a KakaoTalk send result.
    Result,
    /// `HTTaxinvoice`: a tax invoice collected from Hometax.
    HtTaxinvoice,
    /// `HTCashbill`: a cash receipt collected from Hometax.
    HtCashbill,
    /// Any other value, as sent.
    Other(String),
}

impl EventType {
    /// Reads an event type (ASCII case ignored: `OPEN` and `Open` are one).
    ///
    /// ```
    /// use popbill_events::EventType;
    /// assert_eq!(EventType::parse("NTS"), EventType::Nts);
    /// assert_eq!(EventType::parse("Issue").as_str(), "Issue");
    /// assert_eq!(EventType::parse("Resend"), EventType::Other("Resend".into()));
    /// ```
    pub fn parse(s: &str) -> EventType {
        let s = s.trim();
        const KNOWN: [(&str, EventType); 10] = [
            ("Issue", EventType::Issue),
            ("CancelIssue", EventType::CancelIssue),
            ("Cancel", EventType::Cancel),
            ("CLOSEDOWN", EventType::Closedown),
            ("NTS", EventType::Nts),
            ("OPEN", EventType::Open),
            ("MANUAL", EventType::Manual),
            ("RESULT", EventType::Result),
            ("HTTaxinvoice", EventType::HtTaxinvoice),
            ("HTCashbill", EventType::HtCashbill),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| s.eq_ignore_ascii_case(name))
            .map(|(_, t)| t)
            .unwrap_or_else(|| EventType::Other(s.to_owned()))
    }

    /// The value as POPBiLL documents it (`Other` as sent).
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Issue => "Issue",
            EventType::CancelIssue => "CancelIssue",
            EventType::Cancel => "Cancel",
            EventType::Closedown => "CLOSEDOWN",
            EventType::Nts => "NTS",
            EventType::Open => "OPEN",
            EventType::Manual => "MANUAL",
            EventType::Result => "RESULT",
            EventType::HtTaxinvoice => "HTTaxinvoice",
            EventType::HtCashbill => "HTCashbill",
            EventType::Other(s) => s,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tax invoice `stateCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaxInvoiceState {
    /// 300: issued.
    Issued,
    /// 301: before filing with the NTS.
    BeforeFiling,
    /// 302: waiting to be filed.
    WaitingToFile,
    /// 303: filed, waiting for the result.
    Filing,
    /// 304: filed successfully.
    Filed,
    /// 305: filing failed.
    FilingFailed,
    /// 600: issuance cancelled.
    Cancelled,
    /// Any other code.
    Other(u32),
}

impl TaxInvoiceState {
    /// The state of a `stateCode`.
    pub fn from_code(code: u32) -> TaxInvoiceState {
        match code {
            300 => TaxInvoiceState::Issued,
            301 => TaxInvoiceState::BeforeFiling,
            302 => TaxInvoiceState::WaitingToFile,
            303 => TaxInvoiceState::Filing,
            304 => TaxInvoiceState::Filed,
            305 => TaxInvoiceState::FilingFailed,
            600 => TaxInvoiceState::Cancelled,
            other => TaxInvoiceState::Other(other),
        }
    }
}

/// Identifies one document across its events: `corpNum` + `itemKey`, as in
/// the bridge's record key (`corpNum:itemKey`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentKey {
    /// The member's business registration number.
    pub corp_num: String,
    /// POPBiLL's document id.
    pub item_key: String,
}

impl fmt::Display for DocumentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.corp_num, self.item_key)
    }
}

/// `TAXINVOICE.STATE`: a tax invoice changed state.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TaxInvoiceEvent {
    /// `Issue`, `CancelIssue`, `CLOSEDOWN`, `NTS`, `OPEN`, `MANUAL`, ...
    pub event_type: Option<EventType>,
    /// `corpNum`: the member's business registration number (10 digits).
    pub corp_num: Option<String>,
    /// `itemKey`: POPBiLL's document id (18).
    pub item_key: Option<String>,
    /// `ntsConfirmNum`: the NTS approval number (24).
    pub nts_confirm_num: Option<String>,
    /// `stateCode`: see [`state`](Self::state).
    pub state_code: Option<u32>,
    /// `stateDT`: when the document entered this state.
    pub state_dt: Option<PbDateTime>,
    /// `eventDT`: when the event happened.
    pub event_dt: Option<PbDateTime>,
    /// `ntssendDT`: when it was sent to the NTS.
    pub nts_send_dt: Option<PbDateTime>,
    /// `ntsresultDT`: when the NTS answered.
    pub nts_result_dt: Option<PbDateTime>,
    /// `ntssendErrCode`: `SUC001` on success.
    pub nts_send_err_code: Option<String>,
    /// Every other body field.
    pub extra: Map<String, Value>,
}

impl TaxInvoiceEvent {
    /// The `stateCode` as a state.
    pub fn state(&self) -> Option<TaxInvoiceState> {
        self.state_code.map(TaxInvoiceState::from_code)
    }

    /// Whether the NTS filing succeeded (`ntssendErrCode` = `SUC001`);
    /// `None` before a result.
    pub fn nts_succeeded(&self) -> Option<bool> {
        self.nts_send_err_code.as_deref().map(|c| c == "SUC001")
    }
}

/// `STATEMENT.STATE`: an electronic statement changed state.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StatementEvent {
    /// `Issue`, `Cancel`, `OPEN`, `MANUAL`, ...
    pub event_type: Option<EventType>,
    /// `corpNum`.
    pub corp_num: Option<String>,
    /// `itemKey`: POPBiLL's document id.
    pub item_key: Option<String>,
    /// `invoiceNum`.
    pub invoice_num: Option<String>,
    /// `mgtKey`: the member's own document number.
    pub mgt_key: Option<String>,
    /// `stateCode` (POPBiLL sends it as a string here; read either way).
    pub state_code: Option<u32>,
    /// `stateDT`.
    pub state_dt: Option<PbDateTime>,
    /// `issueDT`.
    pub issue_dt: Option<PbDateTime>,
    /// `eventDT`.
    pub event_dt: Option<PbDateTime>,
    /// Every other body field.
    pub extra: Map<String, Value>,
}

/// `CASHBILL.STATE`: a cash receipt changed state.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CashReceiptEvent {
    /// `Issue`, `NTS`, `MANUAL`, ...
    pub event_type: Option<EventType>,
    /// `corpNum`.
    pub corp_num: Option<String>,
    /// `franchiseCorpNum`: the franchise (store) business number.
    pub franchise_corp_num: Option<String>,
    /// `itemKey`: POPBiLL's document id.
    pub item_key: Option<String>,
    /// `tradeDate`.
    pub trade_date: Option<PbDate>,
    /// `confirmNum`: the NTS approval number.
    pub confirm_num: Option<String>,
    /// `ntsresultCode`.
    pub nts_result_code: Option<String>,
    /// `stateCode` (a number here; read either way).
    pub state_code: Option<u32>,
    /// `stateDT`.
    pub state_dt: Option<PbDateTime>,
    /// `issueDT`.
    pub issue_dt: Option<PbDateTime>,
    /// `ntssendDT`.
    pub nts_send_dt: Option<PbDateTime>,
    /// `ntsresultDT`.
    pub nts_result_dt: Option<PbDateTime>,
    /// `eventDT`.
    pub event_dt: Option<PbDateTime>,
    /// Every other body field.
    pub extra: Map<String, Value>,
}

/// `HT.TAXINVOICEXML`: a tax invoice found on Hometax (hourly crawl).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HometaxTaxInvoiceEvent {
    /// `HTTaxinvoice`.
    pub event_type: Option<EventType>,
    /// The member (`Pb-Webhook-Corpnum`; the body has no `corpNum`).
    pub corp_num: Option<String>,
    /// `ntsconfirmNum` (sic, lower-case c; `ntsConfirmNum` read too).
    pub nts_confirm_num: Option<String>,
    /// `writeDate`: the invoice's date.
    pub write_date: Option<PbDate>,
    /// `issueDT`.
    pub issue_dt: Option<PbDateTime>,
    /// `sendDate`: sent to the NTS.
    pub send_date: Option<PbDate>,
    /// `invoiceType` (a number).
    pub invoice_type: Option<i64>,
    /// `invoicerCorpNum`: the seller.
    pub invoicer_corp_num: Option<String>,
    /// `invoicerCorpName`.
    pub invoicer_corp_name: Option<String>,
    /// `invoiceeCorpNum`: the buyer.
    pub invoicee_corp_num: Option<String>,
    /// `invoiceeCorpName`.
    pub invoicee_corp_name: Option<String>,
    /// `supplyCostTotal` (won; sent as a string).
    pub supply_cost_total: Option<i64>,
    /// `taxTotal` (won).
    pub tax_total: Option<i64>,
    /// `totalAmount` (won).
    pub total_amount: Option<i64>,
    /// `eventDT`.
    pub event_dt: Option<PbDateTime>,
    /// Every other body field.
    pub extra: Map<String, Value>,
}

/// `HT.CASHBILL`: a cash receipt found on Hometax.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HometaxCashReceiptEvent {
    /// `HTCashbill`.
    pub event_type: Option<EventType>,
    /// The member (`Pb-Webhook-Corpnum`; the body has no `corpNum`).
    pub corp_num: Option<String>,
    /// `ntsconfirmNum`: the NTS approval number.
    pub nts_confirm_num: Option<String>,
    /// `tradeDate`.
    pub trade_date: Option<PbDate>,
    /// `tradeDT`.
    pub trade_dt: Option<PbDateTime>,
    /// `tradeType`, in Korean: `승인거래` (approval), `취소거래` (cancellation).
    pub trade_type: Option<String>,
    /// `tradeUsage`, in Korean: `소득공제용`, `지출증빙용`.
    pub trade_usage: Option<String>,
    /// `invoiceType`, in Korean: `매입` (purchase), `매출` (sale).
    pub invoice_type: Option<String>,
    /// `totalAmount` (won; sent as a string).
    pub total_amount: Option<i64>,
    /// `supplyCost` (won).
    pub supply_cost: Option<i64>,
    /// `tax` (won).
    pub tax: Option<i64>,
    /// `serviceFee` (won).
    pub service_fee: Option<i64>,
    /// `eventDT`.
    pub event_dt: Option<PbDateTime>,
    /// Every other body field.
    pub extra: Map<String, Value>,
}

/// `KAKAO.STATE`: the result of a KakaoTalk message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct KakaoEvent {
    /// `RESULT` or `MANUAL`.
    pub event_type: Option<EventType>,
    /// `corpNum`.
    pub corp_num: Option<String>,
    /// `receiptNum`: POPBiLL's id of the send request.
    pub receipt_num: Option<String>,
    /// `requestNum`: the member's own id of the request.
    pub request_num: Option<String>,
    /// `serialNum`: which message of the request.
    pub serial_num: Option<i64>,
    /// `state`.
    pub state: Option<i64>,
    /// `result`: the KakaoTalk result code.
    pub result: Option<i64>,
    /// `altResult`: the result of the fallback SMS, if any.
    pub alt_result: Option<i64>,
    /// `contentType`.
    pub content_type: Option<i64>,
    /// `sendNum`: the sender's number.
    pub send_num: Option<String>,
    /// `receiptDT`.
    pub receipt_dt: Option<PbDateTime>,
    /// `reserveDT`: a scheduled send.
    pub reserve_dt: Option<PbDateTime>,
    /// `sendDT`.
    pub send_dt: Option<PbDateTime>,
    /// `resultDT`.
    pub result_dt: Option<PbDateTime>,
    /// `eventDT`.
    pub event_dt: Option<PbDateTime>,
    /// Every other body field.
    pub extra: Map<String, Value>,
}

/// A webhook type this crate does not type: the body as JSON.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct UnknownEvent {
    /// The `Pb-Webhook-Type`, when there was one.
    pub webhook_type: Option<String>,
    /// The event type (header, else body `eventType`).
    pub event_type: Option<EventType>,
    /// The member (header, else body `corpNum`).
    pub corp_num: Option<String>,
    /// The whole body.
    pub body: Map<String, Value>,
}

/// One webhook event, typed by product.
///
/// ```
/// use popbill_events::{Event, EventType, TaxInvoiceState};
///
/// let body = br#"{"corpNum":"1234567890","itemKey":"025111409301000001",
///     "stateCode":304,"stateDT":"20251115090711","eventType":"NTS",
///     "ntssendErrCode":"SUC001"}"#;
/// let Event::TaxInvoice(e) = Event::from_body("TAXINVOICE.STATE", body)? else {
///     panic!("a tax invoice");
/// };
/// assert_eq!(e.event_type, Some(EventType::Nts));
/// assert_eq!(e.state(), Some(TaxInvoiceState::Filed));
/// assert_eq!(e.nts_succeeded(), Some(true));
///
/// // An unknown product is not an error.
/// let e = Event::from_body("SMS.STATE", br#"{"receiptNum":"1"}"#)?;
/// assert!(matches!(e, Event::Unknown(_)));
/// # Ok::<(), popbill_events::BodyError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `TAXINVOICE.STATE`.
    TaxInvoice(TaxInvoiceEvent),
    /// `STATEMENT.STATE`.
    Statement(StatementEvent),
    /// `CASHBILL.STATE`.
    CashReceipt(CashReceiptEvent),
    /// `HT.TAXINVOICEXML`.
    HometaxTaxInvoice(HometaxTaxInvoiceEvent),
    /// `HT.CASHBILL`.
    HometaxCashReceipt(HometaxCashReceiptEvent),
    /// `KAKAO.STATE`.
    Kakao(KakaoEvent),
    /// Any other webhook type (or none): the raw JSON.
    Unknown(UnknownEvent),
}

/// Why a body is not an event. The bridge publishes only JSON objects to
/// its delivery topics; these come from its dead-letter topic, or from
/// records not written by the bridge.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The record has no value at all (a tombstone).
    #[error("record has no value")]
    Missing,
    /// Empty, or only white space.
    #[error("body is empty")]
    Empty,
    /// Not UTF-8.
    #[error("body is not UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 {
        /// Bytes before the first invalid one.
        valid_up_to: usize,
    },
    /// Not JSON (including a body cut short).
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object (an array, a string, ...).
    #[error("body is JSON but not an object")]
    NotObject,
    /// Nested deeper than the JSON parser allows (128 levels).
    #[error("body nests too deeply")]
    TooDeep,
}

/// What the headers say, which wins over the body (as in the bridge).
#[derive(Default, Clone, Copy)]
pub(crate) struct HeaderHints<'a> {
    pub event_type: Option<&'a str>,
    pub corp_num: Option<&'a str>,
}

impl Event {
    /// Reads a webhook body, as POPBiLL sent it, for the webhook type
    /// `webhook_type` (the `Pb-Webhook-Type` header).
    ///
    /// Errors only when the body is not a JSON object; anything a JSON
    /// object holds gives an event.
    pub fn from_body(webhook_type: &str, body: &[u8]) -> Result<Event, BodyError> {
        Event::parse(Some(webhook_type), HeaderHints::default(), Some(body))
    }

    pub(crate) fn parse(
        webhook_type: Option<&str>,
        hints: HeaderHints<'_>,
        body: Option<&[u8]>,
    ) -> Result<Event, BodyError> {
        let map = object(body.ok_or(BodyError::Missing)?)?;
        let kind = match webhook_type.map(WebhookType::parse) {
            Some(WebhookType::Other(t)) => return Ok(unknown(Some(t), hints, map)),
            None => return Ok(unknown(None, hints, map)),
            Some(kind) => kind,
        };
        let mut f = Fields::new(map);
        // Read in every case, so the field does not linger in `extra`.
        let body_event = f.text(&["eventType"]);
        let event_type = hints
            .event_type
            .map(str::to_owned)
            .or(body_event)
            .map(|s| EventType::parse(&s));
        let body_corp = f.text(&["corpNum"]);
        let corp_num = hints.corp_num.map(str::to_owned).or(body_corp);
        Ok(match kind {
            WebhookType::TaxInvoice => Event::TaxInvoice(TaxInvoiceEvent {
                event_type,
                corp_num,
                item_key: f.text(&["itemKey"]),
                nts_confirm_num: f.text(&["ntsConfirmNum"]),
                state_code: f.int(&["stateCode"]),
                state_dt: f.datetime(&["stateDT"]),
                event_dt: f.datetime(&["eventDT"]),
                nts_send_dt: f.datetime(&["ntssendDT"]),
                nts_result_dt: f.datetime(&["ntsresultDT"]),
                nts_send_err_code: f.text(&["ntssendErrCode"]),
                extra: f.rest(),
            }),
            WebhookType::Statement => Event::Statement(StatementEvent {
                event_type,
                corp_num,
                item_key: f.text(&["itemKey"]),
                invoice_num: f.text(&["invoiceNum"]),
                mgt_key: f.text(&["mgtKey"]),
                state_code: f.int(&["stateCode"]),
                state_dt: f.datetime(&["stateDT"]),
                issue_dt: f.datetime(&["issueDT"]),
                event_dt: f.datetime(&["eventDT"]),
                extra: f.rest(),
            }),
            WebhookType::CashReceipt => Event::CashReceipt(CashReceiptEvent {
                event_type,
                corp_num,
                franchise_corp_num: f.text(&["franchiseCorpNum"]),
                item_key: f.text(&["itemKey"]),
                trade_date: f.date(&["tradeDate"]),
                confirm_num: f.text(&["confirmNum", "ntsConfirmNum"]),
                nts_result_code: f.text(&["ntsresultCode"]),
                state_code: f.int(&["stateCode"]),
                state_dt: f.datetime(&["stateDT"]),
                issue_dt: f.datetime(&["issueDT"]),
                nts_send_dt: f.datetime(&["ntssendDT"]),
                nts_result_dt: f.datetime(&["ntsresultDT"]),
                event_dt: f.datetime(&["eventDT"]),
                extra: f.rest(),
            }),
            WebhookType::HometaxTaxInvoice => Event::HometaxTaxInvoice(HometaxTaxInvoiceEvent {
                event_type,
                corp_num,
                nts_confirm_num: f.text(&["ntsconfirmNum"]),
                write_date: f.date(&["writeDate"]),
                issue_dt: f.datetime(&["issueDT"]),
                send_date: f.date(&["sendDate"]),
                invoice_type: f.int(&["invoiceType"]),
                invoicer_corp_num: f.text(&["invoicerCorpNum"]),
                invoicer_corp_name: f.text(&["invoicerCorpName"]),
                invoicee_corp_num: f.text(&["invoiceeCorpNum"]),
                invoicee_corp_name: f.text(&["invoiceeCorpName"]),
                supply_cost_total: f.int(&["supplyCostTotal"]),
                tax_total: f.int(&["taxTotal"]),
                total_amount: f.int(&["totalAmount"]),
                event_dt: f.datetime(&["eventDT"]),
                extra: f.rest(),
            }),
            WebhookType::HometaxCashReceipt => Event::HometaxCashReceipt(HometaxCashReceiptEvent {
                event_type,
                corp_num,
                nts_confirm_num: f.text(&["ntsconfirmNum"]),
                trade_date: f.date(&["tradeDate"]),
                trade_dt: f.datetime(&["tradeDT"]),
                trade_type: f.text(&["tradeType"]),
                trade_usage: f.text(&["tradeUsage"]),
                invoice_type: f.text(&["invoiceType"]),
                total_amount: f.int(&["totalAmount"]),
                supply_cost: f.int(&["supplyCost"]),
                tax: f.int(&["tax"]),
                service_fee: f.int(&["serviceFee"]),
                event_dt: f.datetime(&["eventDT"]),
                extra: f.rest(),
            }),
            WebhookType::Kakao => Event::Kakao(KakaoEvent {
                event_type,
                corp_num,
                receipt_num: f.text(&["receiptNum"]),
                request_num: f.text(&["requestNum"]),
                serial_num: f.int(&["serialNum"]),
                state: f.int(&["state"]),
                result: f.int(&["result"]),
                alt_result: f.int(&["altResult"]),
                content_type: f.int(&["contentType"]),
                send_num: f.text(&["sendNum"]),
                receipt_dt: f.datetime(&["receiptDT"]),
                reserve_dt: f.datetime(&["reserveDT"]),
                send_dt: f.datetime(&["sendDT"]),
                result_dt: f.datetime(&["resultDT"]),
                event_dt: f.datetime(&["eventDT"]),
                extra: f.rest(),
            }),
            // Returned above, before any field was taken.
            WebhookType::Other(t) => unknown(Some(t), hints, f.rest()),
        })
    }

    /// The webhook type this event came with.
    pub fn webhook_type(&self) -> WebhookType {
        match self {
            Event::TaxInvoice(_) => WebhookType::TaxInvoice,
            Event::Statement(_) => WebhookType::Statement,
            Event::CashReceipt(_) => WebhookType::CashReceipt,
            Event::HometaxTaxInvoice(_) => WebhookType::HometaxTaxInvoice,
            Event::HometaxCashReceipt(_) => WebhookType::HometaxCashReceipt,
            Event::Kakao(_) => WebhookType::Kakao,
            Event::Unknown(u) => WebhookType::Other(u.webhook_type.clone().unwrap_or_default()),
        }
    }

    /// The event type (the header's, else the body's `eventType`).
    pub fn event_type(&self) -> Option<&EventType> {
        match self {
            Event::TaxInvoice(e) => e.event_type.as_ref(),
            Event::Statement(e) => e.event_type.as_ref(),
            Event::CashReceipt(e) => e.event_type.as_ref(),
            Event::HometaxTaxInvoice(e) => e.event_type.as_ref(),
            Event::HometaxCashReceipt(e) => e.event_type.as_ref(),
            Event::Kakao(e) => e.event_type.as_ref(),
            Event::Unknown(e) => e.event_type.as_ref(),
        }
    }

    /// The member's business registration number (the header's, else the
    /// body's `corpNum`).
    pub fn corp_num(&self) -> Option<&str> {
        match self {
            Event::TaxInvoice(e) => e.corp_num.as_deref(),
            Event::Statement(e) => e.corp_num.as_deref(),
            Event::CashReceipt(e) => e.corp_num.as_deref(),
            Event::HometaxTaxInvoice(e) => e.corp_num.as_deref(),
            Event::HometaxCashReceipt(e) => e.corp_num.as_deref(),
            Event::Kakao(e) => e.corp_num.as_deref(),
            Event::Unknown(e) => e.corp_num.as_deref(),
        }
    }

    /// POPBiLL's document id (`itemKey`), for the products that have one.
    pub fn item_key(&self) -> Option<&str> {
        match self {
            Event::TaxInvoice(e) => e.item_key.as_deref(),
            Event::Statement(e) => e.item_key.as_deref(),
            Event::CashReceipt(e) => e.item_key.as_deref(),
            Event::Unknown(e) => e.body.get("itemKey").and_then(Value::as_str),
            _ => None,
        }
    }

    /// The document this event is about (`corpNum` + `itemKey`), when both
    /// are known: the unit of ordering.
    pub fn document(&self) -> Option<DocumentKey> {
        Some(DocumentKey {
            corp_num: self.corp_num()?.to_owned(),
            item_key: self.item_key()?.to_owned(),
        })
    }

    /// `stateDT`: when the document entered the state this event reports
    /// (tax invoices, statements, cash receipts).
    pub fn state_dt(&self) -> Option<&PbDateTime> {
        match self {
            Event::TaxInvoice(e) => e.state_dt.as_ref(),
            Event::Statement(e) => e.state_dt.as_ref(),
            Event::CashReceipt(e) => e.state_dt.as_ref(),
            _ => None,
        }
    }

    /// `stateCode`, for the products that have one.
    pub fn state_code(&self) -> Option<u32> {
        match self {
            Event::TaxInvoice(e) => e.state_code,
            Event::Statement(e) => e.state_code,
            Event::CashReceipt(e) => e.state_code,
            _ => None,
        }
    }

    /// `eventDT`: when the event happened. (For [`Event::Unknown`], only
    /// when the body has a string `eventDT`; see
    /// [`Envelope::time`](crate::Envelope) otherwise.)
    pub fn event_dt(&self) -> Option<PbDateTime> {
        match self {
            Event::TaxInvoice(e) => e.event_dt.clone(),
            Event::Statement(e) => e.event_dt.clone(),
            Event::CashReceipt(e) => e.event_dt.clone(),
            Event::HometaxTaxInvoice(e) => e.event_dt.clone(),
            Event::HometaxCashReceipt(e) => e.event_dt.clone(),
            Event::Kakao(e) => e.event_dt.clone(),
            Event::Unknown(e) => e
                .body
                .get("eventDT")
                .and_then(Value::as_str)
                .map(PbDateTime::parse),
        }
    }

    /// Body fields not typed (for [`Event::Unknown`], the whole body).
    pub fn extra(&self) -> &Map<String, Value> {
        match self {
            Event::TaxInvoice(e) => &e.extra,
            Event::Statement(e) => &e.extra,
            Event::CashReceipt(e) => &e.extra,
            Event::HometaxTaxInvoice(e) => &e.extra,
            Event::HometaxCashReceipt(e) => &e.extra,
            Event::Kakao(e) => &e.extra,
            Event::Unknown(e) => &e.body,
        }
    }
}

/// An unknown event keeps the body whole; the header hints win, as for
/// the typed ones.
fn unknown(
    webhook_type: Option<String>,
    hints: HeaderHints<'_>,
    body: Map<String, Value>,
) -> Event {
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let event_type = hints
        .event_type
        .or_else(|| field("eventType"))
        .map(EventType::parse);
    let corp_num = hints
        .corp_num
        .or_else(|| field("corpNum"))
        .map(str::to_owned);
    Event::Unknown(UnknownEvent {
        webhook_type,
        event_type,
        corp_num,
        body,
    })
}

/// The body as a JSON object, or why it is not one.
fn object(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty);
    }
    let text = std::str::from_utf8(body).map_err(|e| BodyError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::NotObject),
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => Err(BodyError::TooDeep),
        Err(e) => Err(BodyError::NotJson(e.to_string())),
    }
}
