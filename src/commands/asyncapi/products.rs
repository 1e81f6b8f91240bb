//! The webhook types POPBiLL documents: per product its schema name,
//! title, event types and payload fields.
//!
//! The fields are POPBiLL's documented ones and those
//! crates/popbill-events types; every schema allows more. The tests beside
//! this file hold the two descriptions equal, field by field, both ways.

#[derive(Clone, Copy)]
pub(super) enum F {
    /// Text; may be empty or null.
    Text,
    /// A 10-digit business registration number.
    CorpNum,
    /// `yyyyMMddHHmmss`, Korean time.
    DateTime,
    /// `yyyyMMdd`.
    Date,
    /// A number or its digits as a string, by product.
    StateCode,
    /// A number (or null).
    Int,
    /// A number or a string.
    IntOrText,
    /// An amount: a number or its digits as a string.
    Amount,
}

pub(super) struct Product {
    pub(super) webhook_type: &'static str,
    pub(super) schema: &'static str,
    pub(super) title: &'static str,
    pub(super) has_item_key: bool,
    pub(super) events: &'static [(&'static str, &'static str)],
    pub(super) fields: &'static [(&'static str, F, &'static str)],
}

const TAX_INVOICE_FIELDS: &[(&str, F, &str)] = &[
    (
        "corpNum",
        F::CorpNum,
        "The member's business registration number.",
    ),
    ("itemKey", F::Text, "POPBiLL's document id (18 characters)."),
    (
        "ntsConfirmNum",
        F::Text,
        "National Tax Service confirmation number (24 characters).",
    ),
    (
        "ntssendDT",
        F::DateTime,
        "When the invoice was filed with the National Tax Service.",
    ),
    (
        "ntsresultDT",
        F::DateTime,
        "When the National Tax Service's result came.",
    ),
    (
        "ntssendErrCode",
        F::Text,
        "Filing result code: `SUC001` is success.",
    ),
    (
        "stateCode",
        F::StateCode,
        "300 issued, 301 before filing, 302 waiting to file, 303 filed and waiting for the result, 304 filed OK, 305 filing failed, 600 issuance cancelled.",
    ),
    (
        "stateDT",
        F::DateTime,
        "When the document reached this state: order a document's events by it.",
    ),
    ("eventDT", F::DateTime, "When the event happened."),
];

pub(super) const PRODUCTS: &[Product] = &[
    Product {
        webhook_type: "TAXINVOICE.STATE",
        schema: "TaxInvoiceState",
        title: "Tax invoice state event",
        has_item_key: true,
        events: &[
            ("Issue", "the seller issued and signed the tax invoice"),
            ("CancelIssue", "the issuance was cancelled"),
            ("CLOSEDOWN", "the buyer's business-status check finished"),
            (
                "NTS",
                "the invoice's state moved to 301, 304 or 305 (filing with the National Tax Service)",
            ),
            ("OPEN", "the buyer opened the invoice from the e-mail"),
            ("MANUAL", "a delivery re-run by hand from the POPBiLL site"),
        ],
        fields: TAX_INVOICE_FIELDS,
    },
    Product {
        webhook_type: "STATEMENT.STATE",
        schema: "StatementState",
        title: "Statement state event",
        has_item_key: true,
        events: &[
            ("Issue", "the statement was issued"),
            ("Cancel", "the statement was cancelled"),
            ("OPEN", "the recipient opened the statement"),
            ("MANUAL", "a delivery re-run by hand from the POPBiLL site"),
        ],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number.",
            ),
            ("itemKey", F::Text, "POPBiLL's document id."),
            ("invoiceNum", F::Text, "The statement's number."),
            ("mgtKey", F::Text, "The member's own document key."),
            (
                "stateCode",
                F::StateCode,
                "The statement's state; a string for statements.",
            ),
            (
                "stateDT",
                F::DateTime,
                "When the document reached this state: order a document's events by it.",
            ),
            ("issueDT", F::DateTime, "When the statement was issued."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
    Product {
        webhook_type: "CASHBILL.STATE",
        schema: "CashbillState",
        title: "Cash receipt state event",
        has_item_key: true,
        events: &[
            ("Issue", "the cash receipt was issued"),
            (
                "NTS",
                "the cash receipt's filing with the National Tax Service progressed",
            ),
            ("MANUAL", "a delivery re-run by hand from the POPBiLL site"),
        ],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number.",
            ),
            (
                "franchiseCorpNum",
                F::CorpNum,
                "The franchise's business registration number.",
            ),
            ("itemKey", F::Text, "POPBiLL's document id."),
            ("tradeDate", F::Date, "The trade date."),
            (
                "confirmNum",
                F::Text,
                "National Tax Service confirmation number.",
            ),
            (
                "ntssendDT",
                F::DateTime,
                "When the receipt was filed with the National Tax Service.",
            ),
            (
                "ntsresultDT",
                F::DateTime,
                "When the National Tax Service's result came.",
            ),
            (
                "ntsresultCode",
                F::Text,
                "The National Tax Service's result code.",
            ),
            (
                "stateCode",
                F::StateCode,
                "The receipt's state; a number for cash receipts.",
            ),
            (
                "stateDT",
                F::DateTime,
                "When the document reached this state: order a document's events by it.",
            ),
            ("issueDT", F::DateTime, "When the receipt was issued."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
    Product {
        webhook_type: "HT.TAXINVOICEXML",
        schema: "HometaxTaxInvoice",
        title: "Hometax tax-invoice crawl",
        has_item_key: false,
        events: &[(
            "HTTaxinvoice",
            "a tax invoice found by the hourly hometax crawl (pushed on the hour: bursts; bodies can be large)",
        )],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number, when in the body.",
            ),
            (
                "ntsconfirmNum",
                F::Text,
                "National Tax Service confirmation number (note the lower-case c).",
            ),
            ("writeDate", F::Date, "The invoice's date."),
            ("issueDT", F::DateTime, "When the invoice was issued."),
            (
                "sendDate",
                F::Date,
                "When the invoice was sent to the National Tax Service.",
            ),
            (
                "invoiceType",
                F::IntOrText,
                "The invoice type code (a number).",
            ),
            (
                "invoicerCorpNum",
                F::CorpNum,
                "The seller's business registration number.",
            ),
            ("invoicerCorpName", F::Text, "The seller's name."),
            (
                "invoiceeCorpNum",
                F::CorpNum,
                "The buyer's business registration number.",
            ),
            ("invoiceeCorpName", F::Text, "The buyer's name."),
            ("supplyCostTotal", F::Amount, "Total supply cost."),
            ("taxTotal", F::Amount, "Total tax."),
            ("totalAmount", F::Amount, "Total amount."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
    Product {
        webhook_type: "HT.CASHBILL",
        schema: "HometaxCashbill",
        title: "Hometax cash-receipt crawl",
        has_item_key: false,
        events: &[("HTCashbill", "a cash receipt found by the hometax crawl")],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number, when in the body.",
            ),
            (
                "ntsconfirmNum",
                F::Text,
                "National Tax Service confirmation number.",
            ),
            ("tradeDate", F::Date, "The trade date."),
            ("tradeDT", F::DateTime, "The trade's date and time."),
            (
                "tradeType",
                F::Text,
                "Trade type, in Korean (e.g. `승인거래`).",
            ),
            (
                "tradeUsage",
                F::Text,
                "Trade usage, in Korean (e.g. `지출증빙용`).",
            ),
            (
                "invoiceType",
                F::Text,
                "Purchase or sale, in Korean (`매입`, `매출`).",
            ),
            ("totalAmount", F::Amount, "Total amount."),
            ("supplyCost", F::Amount, "Supply cost."),
            ("tax", F::Amount, "Tax."),
            ("serviceFee", F::Amount, "Service fee."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
    Product {
        webhook_type: "KAKAO.STATE",
        schema: "KakaoState",
        title: "KakaoTalk message result",
        has_item_key: false,
        events: &[
            ("RESULT", "the result of a KakaoTalk message"),
            ("MANUAL", "a delivery re-run by hand from the POPBiLL site"),
        ],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number.",
            ),
            (
                "receiptNum",
                F::Text,
                "POPBiLL's receipt number of the send request.",
            ),
            ("requestNum", F::Text, "The member's own request number."),
            (
                "serialNum",
                F::Int,
                "The message's position in the request.",
            ),
            ("state", F::Int, "The message's state code."),
            ("result", F::Int, "The carrier's result code."),
            (
                "altResult",
                F::Int,
                "The result code of the alternative (SMS) send, if any.",
            ),
            ("contentType", F::Int, "The message's kind."),
            ("sendNum", F::Text, "The sender's number."),
            (
                "receiptDT",
                F::DateTime,
                "When POPBiLL accepted the request.",
            ),
            ("reserveDT", F::DateTime, "When the send was scheduled for."),
            ("sendDT", F::DateTime, "When it was sent."),
            ("resultDT", F::DateTime, "When the result came."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
];

pub(super) fn product(webhook_type: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.webhook_type == webhook_type)
}

#[cfg(test)]
mod tests;
