package com.popbillbridge.events;

import com.popbillbridge.events.PbDateTime.PbDate;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One webhook event, typed by product (crates/popbill-events/src/event.rs): the webhook type
 * picks the variant, the body fills it. Every field may be null, because POPBiLL may leave any
 * out; fields not typed (undocumented ones, values of an unexpected shape) stay in
 * {@code extra}. An unknown webhook type is never an error but {@link Unknown}, with the whole
 * body as JSON values ({@link Json}).
 */
public sealed interface Event {
    /** {@code Pb-Webhook-Type} of e-tax invoices. */
    String TAX_INVOICE = "TAXINVOICE.STATE";
    /** Electronic statements. */
    String STATEMENT = "STATEMENT.STATE";
    /** Cash receipts. */
    String CASH_RECEIPT = "CASHBILL.STATE";
    /** Tax invoices collected from Hometax. */
    String HOMETAX_TAX_INVOICE = "HT.TAXINVOICEXML";
    /** Cash receipts collected from Hometax. */
    String HOMETAX_CASH_RECEIPT = "HT.CASHBILL";
    /** KakaoTalk message results. */
    String KAKAO = "KAKAO.STATE";

    /** The typed webhook types. */
    List<String> WEBHOOK_TYPES = List.of(TAX_INVOICE, STATEMENT, CASH_RECEIPT, HOMETAX_TAX_INVOICE,
            HOMETAX_CASH_RECEIPT, KAKAO);
    /** The documented event types; a value differing only in ASCII case reads as one of these. */
    List<String> EVENT_TYPES = List.of("Issue", "CancelIssue", "Cancel", "CLOSEDOWN", "NTS", "OPEN",
            "MANUAL", "RESULT", "HTTaxinvoice", "HTCashbill");

    /** The event type (the header's, else the body's {@code eventType}), in POPBiLL's spelling. */
    String eventType();

    /** The member's business registration number (the header's, else the body's). */
    String corpNum();

    /** POPBiLL's document id, for the products that have one. */
    default String itemKey() {
        return null;
    }

    /** {@code stateDT}, for the products that have one. */
    default PbDateTime stateDt() {
        return null;
    }

    /** The document ({@code corpNum}, {@code itemKey}), the unit of ordering, when both are known. */
    default Optional<DocumentKey> document() {
        return corpNum() == null || itemKey() == null ? Optional.empty()
                : Optional.of(new DocumentKey(corpNum(), itemKey()));
    }

    /** One document across its events: as in the record key {@code corpNum:itemKey}. */
    record DocumentKey(String corpNum, String itemKey) {
        @Override
        public String toString() {
            return corpNum + ":" + itemKey;
        }
    }

    /** {@code TAXINVOICE.STATE}: a tax invoice changed state. */
    record TaxInvoice(String eventType, String corpNum, String itemKey, String ntsConfirmNum, Long stateCode,
            PbDateTime stateDt, PbDateTime eventDt, PbDateTime ntsSendDt, PbDateTime ntsResultDt,
            String ntsSendErrCode, Map<String, Object> extra) implements Event {
        /** Whether the NTS filing succeeded ({@code SUC001}); null before a result. */
        public Boolean ntsSucceeded() {
            return ntsSendErrCode == null ? null : ntsSendErrCode.equals("SUC001");
        }
    }

    /** {@code STATEMENT.STATE}: an electronic statement changed state. */
    record Statement(String eventType, String corpNum, String itemKey, String invoiceNum, String mgtKey,
            Long stateCode, PbDateTime stateDt, PbDateTime issueDt, PbDateTime eventDt,
            Map<String, Object> extra) implements Event {}

    /** {@code CASHBILL.STATE}: a cash receipt changed state. */
    record CashReceipt(String eventType, String corpNum, String franchiseCorpNum, String itemKey,
            PbDate tradeDate, String confirmNum, String ntsResultCode, Long stateCode, PbDateTime stateDt,
            PbDateTime issueDt, PbDateTime ntsSendDt, PbDateTime ntsResultDt, PbDateTime eventDt,
            Map<String, Object> extra) implements Event {}

    /** {@code HT.TAXINVOICEXML}: a tax invoice found on Hometax. */
    record HometaxTaxInvoice(String eventType, String corpNum, String ntsConfirmNum, PbDate writeDate,
            PbDateTime issueDt, PbDate sendDate, Long invoiceType, String invoicerCorpNum,
            String invoicerCorpName, String invoiceeCorpNum, String invoiceeCorpName, Long supplyCostTotal,
            Long taxTotal, Long totalAmount, PbDateTime eventDt, Map<String, Object> extra) implements Event {}

    /** {@code HT.CASHBILL}: a cash receipt found on Hometax. */
    record HometaxCashReceipt(String eventType, String corpNum, String ntsConfirmNum, PbDate tradeDate,
            PbDateTime tradeDt, String tradeType, String tradeUsage, String invoiceType, Long totalAmount,
            Long supplyCost, Long tax, Long serviceFee, PbDateTime eventDt, Map<String, Object> extra)
            implements Event {}

    /** {@code KAKAO.STATE}: the result of a KakaoTalk message. */
    record Kakao(String eventType, String corpNum, String receiptNum, String requestNum, Long serialNum,
            Long state, Long result, Long altResult, Long contentType, String sendNum, PbDateTime receiptDt,
            PbDateTime reserveDt, PbDateTime sendDt, PbDateTime resultDt, PbDateTime eventDt,
            Map<String, Object> extra) implements Event {}

    /** Any other webhook type (or none): the whole body, as JSON values. */
    record Unknown(String webhookType, String eventType, String corpNum, Map<String, Object> body)
            implements Event {
        @Override
        public String itemKey() {
            return body.get("itemKey") instanceof String ? (String) body.get("itemKey") : null;
        }
    }

    /** A webhook type in its documented spelling (ASCII case ignored), else as sent (trimmed). */
    static String webhookType(String s) {
        return known(s, WEBHOOK_TYPES);
    }

    /** An event type in its documented spelling (ASCII case ignored), else as sent (trimmed). */
    static String eventType(String s) {
        return known(s, EVENT_TYPES);
    }

    private static String known(String s, List<String> known) {
        String t = Text.trim(s);
        for (String k : known) {
            if (Text.asciiEqualsIgnoreCase(t, k)) {
                return k;
            }
        }
        return t;
    }

    /**
     * The event of a body (taken over) for a webhook type; the headers' event type and corpNum,
     * when given, win over the body's.
     */
    static Event parse(String webhookType, String headerEventType, String headerCorpNum, Map<String, Object> body) {
        String kind = webhookType == null ? null : webhookType(webhookType);
        if (kind == null || !WEBHOOK_TYPES.contains(kind)) {
            return unknown(kind, headerEventType, headerCorpNum, body);
        }
        Fields f = new Fields(body);
        // Read in every case, so that the field does not linger in extra.
        String bodyEvent = f.text("eventType");
        String et = headerEventType != null ? headerEventType : bodyEvent;
        String eventType = et == null ? null : eventType(et);
        String bodyCorp = f.text("corpNum");
        String corp = headerCorpNum != null ? headerCorpNum : bodyCorp;
        switch (kind) {
            case TAX_INVOICE:
                return new TaxInvoice(eventType, corp, f.text("itemKey"), f.text("ntsConfirmNum"),
                        f.u32("stateCode"), f.dateTime("stateDT"), f.dateTime("eventDT"), f.dateTime("ntssendDT"),
                        f.dateTime("ntsresultDT"), f.text("ntssendErrCode"), f.rest());
            case STATEMENT:
                return new Statement(eventType, corp, f.text("itemKey"), f.text("invoiceNum"), f.text("mgtKey"),
                        f.u32("stateCode"), f.dateTime("stateDT"), f.dateTime("issueDT"), f.dateTime("eventDT"),
                        f.rest());
            case CASH_RECEIPT:
                return new CashReceipt(eventType, corp, f.text("franchiseCorpNum"), f.text("itemKey"),
                        f.date("tradeDate"), f.text("confirmNum", "ntsConfirmNum"), f.text("ntsresultCode"),
                        f.u32("stateCode"), f.dateTime("stateDT"), f.dateTime("issueDT"), f.dateTime("ntssendDT"),
                        f.dateTime("ntsresultDT"), f.dateTime("eventDT"), f.rest());
            case HOMETAX_TAX_INVOICE:
                return new HometaxTaxInvoice(eventType, corp, f.text("ntsconfirmNum"), f.date("writeDate"),
                        f.dateTime("issueDT"), f.date("sendDate"), f.integer("invoiceType"),
                        f.text("invoicerCorpNum"), f.text("invoicerCorpName"), f.text("invoiceeCorpNum"),
                        f.text("invoiceeCorpName"), f.integer("supplyCostTotal"), f.integer("taxTotal"),
                        f.integer("totalAmount"), f.dateTime("eventDT"), f.rest());
            case HOMETAX_CASH_RECEIPT:
                return new HometaxCashReceipt(eventType, corp, f.text("ntsconfirmNum"), f.date("tradeDate"),
                        f.dateTime("tradeDT"), f.text("tradeType"), f.text("tradeUsage"), f.text("invoiceType"),
                        f.integer("totalAmount"), f.integer("supplyCost"), f.integer("tax"),
                        f.integer("serviceFee"), f.dateTime("eventDT"), f.rest());
            default: // KAKAO
                return new Kakao(eventType, corp, f.text("receiptNum"), f.text("requestNum"),
                        f.integer("serialNum"), f.integer("state"), f.integer("result"), f.integer("altResult"),
                        f.integer("contentType"), f.text("sendNum"), f.dateTime("receiptDT"),
                        f.dateTime("reserveDT"), f.dateTime("sendDT"), f.dateTime("resultDT"),
                        f.dateTime("eventDT"), f.rest());
        }
    }

    private static Unknown unknown(String webhookType, String headerEventType, String headerCorpNum,
            Map<String, Object> body) {
        String et = headerEventType != null ? headerEventType : bodyText(body, "eventType");
        String corp = headerCorpNum != null ? headerCorpNum : bodyText(body, "corpNum");
        return new Unknown(webhookType, et == null ? null : eventType(et), corp, body);
    }

    private static String bodyText(Map<String, Object> body, String name) {
        Object v = body.get(name);
        if (!(v instanceof String)) {
            return null;
        }
        String t = Text.trim((String) v);
        return t.isEmpty() ? null : t;
    }
}
