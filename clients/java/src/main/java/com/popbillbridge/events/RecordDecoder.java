package com.popbillbridge.events;

import java.time.DateTimeException;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * Decodes a record as popbill-bridge writes it (crates/popbill-events/src/record.rs): value = the
 * webhook body, key = {@code corpNum:itemKey} or the id, timestamp = the receive time, headers =
 * POPBiLL's, {@code popbill-bridge-received-at}, the {@code ce_*} attributes.
 */
public final class RecordDecoder {
    private RecordDecoder() {}

    /** Header with the bridge's receive time (RFC 3339, UTC, milliseconds). */
    public static final String RECEIVED_AT = "popbill-bridge-received-at";
    /** Header with the reason a delivery went to the dead-letter topic. */
    public static final String REJECTION_REASON = "popbill-bridge-rejection-reason";
    /** Header on records {@code popbill-bridge redrive} wrote: where the delivery was. */
    public static final String REDRIVEN_FROM = "popbill-bridge-redriven-from";

    private static final java.util.Set<String> INTERPRETED = java.util.Set.of("ce_id", "ce_specversion", "ce_source", "ce_type",
            "ce_time", "ce_subject", "pb-webhook-type", "pb-webhook-mid", "pb-webhook-corpnum",
            "pb-webhook-eventtype", "content-type", RECEIVED_AT, REJECTION_REASON);

    private static final Pattern RFC3339 = Pattern.compile(
            "(\\d{4})-(\\d{2})-(\\d{2})[Tt](\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?(?:([Zz])|([+-])(\\d{2}):(\\d{2}))");

    /** 9999-12-30T22:00:00Z, the last second of jiff's Timestamp. */
    private static final long MAX_EPOCH_SECOND = 253402207200L;

    /** A record as the Java client gives it. */
    public static Delivery decode(ConsumerRecord<byte[], byte[]> record) throws DecodeException {
        return decode(RawRecord.of(record));
    }

    /**
     * Envelope and typed event. Throws {@link DecodeException.NotADelivery} without {@code ce_id},
     * {@link DecodeException.Body} when the value is not a JSON object (a dead letter). An unknown
     * webhook type is {@link Event.Unknown}, not an error.
     */
    public static Delivery decode(RawRecord record) throws DecodeException {
        Envelope envelope = envelope(record);
        Map<String, Object> body = object(envelope, record.value());
        return new Delivery(envelope, Event.parse(envelope.webhookType(), envelope.eventType(), envelope.corpNum(), body));
    }

    /** The headers, key and timestamp, not the value. */
    public static Envelope envelope(RawRecord r) throws DecodeException {
        Map<String, RawRecord.RawHeader> first = r.firstHeaders();
        java.util.function.Function<String, String> text = name -> {
            RawRecord.RawHeader h = first.get(name);
            return h == null ? null : RawRecord.headerText(h.value());
        };
        String id = text.apply("ce_id");
        if (id == null) {
            id = text.apply("pb-webhook-mid");
        }
        if (id == null) {
            throw new DecodeException.NotADelivery();
        }
        List<RawRecord.RawHeader> others = new ArrayList<>();
        for (RawRecord.RawHeader h : r.headers()) {
            if (!INTERPRETED.contains(Text.asciiLower(h.name()))) {
                others.add(h);
            }
        }
        return new Envelope(
                new Envelope.CloudEvent(id, text.apply("ce_specversion"), text.apply("ce_source"),
                        text.apply("ce_type"), instant(text.apply("ce_time")), text.apply("ce_subject")),
                text.apply("pb-webhook-type"), text.apply("pb-webhook-mid"), text.apply("pb-webhook-corpnum"),
                text.apply("pb-webhook-eventtype"), text.apply("content-type"),
                r.key() == null ? null : Text.lossyUtf8(r.key()),
                instant(text.apply(RECEIVED_AT)),
                r.timestampMillis() == null ? null : Instant.ofEpochMilli(r.timestampMillis()),
                text.apply(REJECTION_REASON), List.copyOf(others));
    }

    /**
     * A header time in the one form the three libraries read (the bridge's:
     * {@code YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)}, offset hours to 23), or null; null too
     * after 9999-12-30T22:00Z, the last instant the Rust crate holds.
     */
    static Instant instant(String s) {
        if (s == null) {
            return null;
        }
        Matcher m = RFC3339.matcher(s);
        if (!m.matches()) {
            return null;
        }
        try {
            int nanos = m.group(7) == null ? 0 : Integer.parseInt((m.group(7) + "00000000").substring(0, 9));
            LocalDateTime t = LocalDateTime.of(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                    Integer.parseInt(m.group(3)), Integer.parseInt(m.group(4)), Integer.parseInt(m.group(5)),
                    Integer.parseInt(m.group(6)), nanos);
            long offset = 0;
            if (m.group(8) == null) {
                int hours = Integer.parseInt(m.group(10));
                int minutes = Integer.parseInt(m.group(11));
                // RFC 3339's bounds, as in Rust and Python (ZoneOffset would stop at 18:00).
                if (hours > 23 || minutes > 59) {
                    return null;
                }
                offset = (m.group(9).equals("-") ? -1 : 1) * (hours * 3600L + minutes * 60L);
            }
            Instant instant = Instant.ofEpochSecond(t.toEpochSecond(ZoneOffset.UTC) - offset, nanos);
            // The last instant the Rust crate (jiff) holds: 9999-12-30T22:00:00.999999999Z; a later
            // one (9999-12-31T23:59:59+09:00, the bridge's ce_time for the last eventDT) is no time
            // there, so none here.
            return instant.getEpochSecond() > MAX_EPOCH_SECOND ? null : instant;
        } catch (DateTimeException e) {
            return null;
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Envelope envelope, byte[] value) throws DecodeException.Body {
        if (value == null) {
            throw new DecodeException.Body(envelope, "missing", -1, null);
        }
        boolean blank = true;
        for (byte b : value) {
            // Rust's u8::is_ascii_whitespace: not vertical tab.
            if (b != ' ' && b != '\t' && b != '\n' && b != '\f' && b != '\r') {
                blank = false;
                break;
            }
        }
        if (blank) {
            throw new DecodeException.Body(envelope, "empty", -1, null);
        }
        String[] text = new String[1];
        int invalid = RawRecord.utf8Error(value, text);
        if (invalid >= 0) {
            throw new DecodeException.Body(envelope, "not_utf8", invalid, null);
        }
        Object parsed;
        try {
            parsed = Json.parse(text[0]);
        } catch (Json.JsonException e) {
            throw new DecodeException.Body(envelope, e.tooDeep ? "too_deep" : "not_json", -1, e.getMessage());
        }
        if (!(parsed instanceof Map)) {
            throw new DecodeException.Body(envelope, "not_object", -1, null);
        }
        return (Map<String, Object>) parsed;
    }
}
