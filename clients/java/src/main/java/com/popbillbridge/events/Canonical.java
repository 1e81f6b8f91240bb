package com.popbillbridge.events;

import com.popbillbridge.events.PbDateTime.PbDate;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The canonical JSON form of a decoded record: byte for byte the text of the Rust crate's
 * {@code canonical_json} and of the Python client's (rules: tests/vectors/README.md).
 */
public final class Canonical {
    private Canonical() {}


    /** The canonical text of a delivery (no trailing newline). */
    public static String json(Delivery d) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("envelope", envelope(d.envelope()));
        m.put("error", null);
        m.put("event", event(d.event()));
        return Json.write(m);
    }

    /** The canonical text of a decode error. */
    public static String json(DecodeException e) {
        Map<String, Object> m = new LinkedHashMap<>();
        Map<String, Object> error = new LinkedHashMap<>();
        if (e instanceof DecodeException.Body) {
            DecodeException.Body b = (DecodeException.Body) e;
            error.put("kind", b.kind);
            if (b.kind.equals("not_utf8")) {
                error.put("valid_up_to", (long) b.validUpTo);
            }
            m.put("envelope", envelope(b.envelope));
        } else {
            error.put("kind", "not_a_delivery");
            m.put("envelope", null);
        }
        m.put("error", error);
        m.put("event", null);
        return Json.write(m);
    }

    static String instant(Instant t) {
        if (t == null) {
            return null;
        }
        // Floored (an Instant's nanos are never negative). The year as jiff's %Y writes it: four
        // characters with the sign ("-001" for the year before year 0), which
        // DateTimeFormatter does not do.
        java.time.LocalDateTime u = java.time.LocalDateTime.ofInstant(t, ZoneOffset.UTC);
        return String.format(Locale.ROOT, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", u.getYear(),
                u.getMonthValue(), u.getDayOfMonth(), u.getHour(), u.getMinute(), u.getSecond(),
                u.getNano() / 1_000_000);
    }

    private static Object bytes(byte[] b) {
        if (b == null) {
            return null;
        }
        String text = RawRecord.utf8(b);
        return text != null ? text : Map.of("base64", Base64.getEncoder().encodeToString(b));
    }

    private static Map<String, Object> envelope(Envelope e) {
        Map<String, Object> ce = new LinkedHashMap<>();
        Envelope.CloudEvent c = e.cloudEvent();
        ce.put("id", c.id());
        ce.put("spec_version", c.specVersion());
        ce.put("source", c.source());
        ce.put("type", c.type());
        ce.put("time", instant(c.time()));
        ce.put("subject", c.subject());
        List<Object> headers = new ArrayList<>();
        for (RawRecord.RawHeader h : e.otherHeaders()) {
            List<Object> pair = new ArrayList<>();
            pair.add(h.name());
            pair.add(bytes(h.value()));
            headers.add(pair);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cloud_event", ce);
        m.put("webhook_type", e.webhookType());
        m.put("mid", e.mid());
        m.put("corp_num", e.corpNum());
        m.put("event_type", e.eventType());
        m.put("content_type", e.contentType());
        m.put("key", e.key());
        m.put("received_at", instant(e.receivedAt()));
        m.put("timestamp", instant(e.timestamp()));
        m.put("rejection_reason", e.rejectionReason());
        m.put("other_headers", headers);
        return m;
    }

    private static Object date(Object v) {
        if (v instanceof PbDateTime) {
            PbDateTime t = (PbDateTime) v;
            return dateMap(t.raw(), t.canonicalValue(), t.error().map(x -> x.canonical).orElse(null));
        }
        PbDate d = (PbDate) v;
        return d == null ? null : dateMap(d.raw(), d.canonicalValue(), d.error().map(x -> x.canonical).orElse(null));
    }

    private static Map<String, Object> dateMap(String raw, String value, String error) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("raw", raw);
        m.put("value", value);
        m.put("error", error);
        return m;
    }

    /** The event's fields by their canonical (snake_case) names, from the record's components. */
    private static Map<String, Object> event(Event e) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (var component : e.getClass().getRecordComponents()) {
            Object v;
            try {
                v = component.getAccessor().invoke(e);
            } catch (ReflectiveOperationException ex) {
                throw new IllegalStateException(ex);
            }
            if (v instanceof PbDateTime || v instanceof PbDate) {
                v = date(v);
            }
            m.put(snake(component.getName()), v);
        }
        m.put("kind", kind(e));
        return m;
    }

    static String kind(Event e) {
        if (e instanceof Event.TaxInvoice) {
            return "tax_invoice";
        } else if (e instanceof Event.Statement) {
            return "statement";
        } else if (e instanceof Event.CashReceipt) {
            return "cash_receipt";
        } else if (e instanceof Event.HometaxTaxInvoice) {
            return "hometax_tax_invoice";
        } else if (e instanceof Event.HometaxCashReceipt) {
            return "hometax_cash_receipt";
        } else if (e instanceof Event.Kakao) {
            return "kakao";
        }
        return "unknown";
    }

    /** {@code ntsSendDt} → {@code nts_send_dt}: the Rust field names. */
    static String snake(String camel) {
        StringBuilder out = new StringBuilder();
        for (char c : camel.toCharArray()) {
            if (Character.isUpperCase(c)) {
                out.append('_').append(Character.toLowerCase(c));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }
}
