package com.popbillbridge.events;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.TimestampType;

/**
 * One Kafka record, as bytes: key, value, headers in order (a header may have no value), and the
 * timestamp in milliseconds (null when the record has none).
 */
public record RawRecord(byte[] key, byte[] value, List<RawHeader> headers, Long timestampMillis) {
    /** A header: name and value (null for none). */
    public record RawHeader(String name, byte[] value) {}

    /** A record as the Java client gives it. */
    public static RawRecord of(ConsumerRecord<byte[], byte[]> r) {
        List<RawHeader> headers = new ArrayList<>();
        for (Header h : r.headers()) {
            headers.add(new RawHeader(h.key(), h.value()));
        }
        Long ts = r.timestampType() == TimestampType.NO_TIMESTAMP_TYPE || r.timestamp() < 0 ? null : r.timestamp();
        return new RawRecord(r.key(), r.value(), headers, ts);
    }

    /**
     * The first header of that name (ASCII case ignored), when its value is UTF-8 and not blank.
     * Only the first is looked at, as in the Rust crate.
     */
    public String header(String name) {
        for (RawHeader h : headers) {
            if (Text.asciiEqualsIgnoreCase(h.name(), name)) {
                return headerText(h.value());
            }
        }
        return null;
    }

    /** A header value as the Rust crate reads it: UTF-8, trimmed, not blank; else null. */
    static String headerText(byte[] value) {
        if (value == null) {
            return null;
        }
        String text = utf8(value);
        if (text == null) {
            return null;
        }
        text = Text.trim(text);
        return text.isEmpty() ? null : text;
    }

    /**
     * The first header of each name, by its ASCII-lower-case name: one pass per record instead of
     * one per name looked up.
     */
    Map<String, RawHeader> firstHeaders() {
        Map<String, RawHeader> first = new HashMap<>();
        for (RawHeader h : headers) {
            first.putIfAbsent(Text.asciiLower(h.name()), h);
        }
        return first;
    }

    /** Strict UTF-8, or null. */
    static String utf8(byte[] b) {
        boolean ascii = true;
        for (byte x : b) {
            if (x < 0) {
                ascii = false;
                break;
            }
        }
        if (ascii) {
            // Header values nearly always are: no decoder needed.
            return new String(b, StandardCharsets.US_ASCII);
        }
        try {
            return decoder().decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    /**
     * The offset of the first byte that is not UTF-8 (Rust's valid_up_to), or -1 and the text in
     * {@code out[0]}.
     */
    static int utf8Error(byte[] b, String[] out) {
        CharsetDecoder d = decoder();
        ByteBuffer in = ByteBuffer.wrap(b);
        CharBuffer chars = CharBuffer.allocate((int) (b.length * (double) d.maxCharsPerByte()) + 1);
        if (d.decode(in, chars, true).isError() || d.flush(chars).isError()) {
            return in.position();
        }
        out[0] = chars.flip().toString();
        return -1;
    }

    private static CharsetDecoder decoder() {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
    }

    static String lower(String s) {
        return s.toLowerCase(Locale.ROOT);
    }
}
