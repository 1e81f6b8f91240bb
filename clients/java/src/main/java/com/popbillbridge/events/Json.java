package com.popbillbridge.events;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON read and written the way the Rust crate's serde_json does, so that the three decoders
 * agree byte for byte (tests/vectors/README.md).
 *
 * <p>Values: {@code Map<String, Object>} (a JSON object; a key given twice keeps its last value),
 * {@code List<Object>}, {@code String}, {@code Boolean}, {@code null}, and numbers as serde_json
 * keeps them: {@code Long} (an integer token that fits i64), {@code BigInteger} (one that fits
 * u64 only), {@code Double} (anything else, {@code -0} included).
 */
public final class Json {
    private Json() {}

    /** serde_json's recursion limit: the 128th nested container fails. */
    static final int MAX_DEPTH = 127;

    /**
     * Without Jackson's default StreamReadConstraints (numbers of at most 1000 characters, names
     * of at most 50,000, strings of 20 million, nesting 1000): serde_json has no such limits, and
     * a body it reads must read here. Nesting is limited by {@link #MAX_DEPTH}; the size of a
     * body by the bridge's max_body_bytes.
     */
    private static final JsonFactory FACTORY = JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNumberLength(Integer.MAX_VALUE)
                    .maxNameLength(Integer.MAX_VALUE)
                    .maxStringLength(Integer.MAX_VALUE)
                    .maxNestingDepth(Integer.MAX_VALUE)
                    .build())
            .build();
    private static final BigInteger I64_MIN = BigInteger.valueOf(Long.MIN_VALUE);
    private static final BigInteger U64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    /** Not JSON as serde_json reads it; {@link #tooDeep} tells nesting apart. */
    public static final class JsonException extends Exception {
        private static final long serialVersionUID = 1L;
        /** True when the text nests deeper than serde_json allows. */
        public final boolean tooDeep;

        JsonException(String message, boolean tooDeep) {
            super(message);
            this.tooDeep = tooDeep;
        }
    }

    /** Parses {@code text} as serde_json would. */
    public static Object parse(String text) throws JsonException {
        try (JsonParser p = FACTORY.createParser(text)) {
            JsonToken first = p.nextToken();
            if (first == null) {
                throw new JsonException("EOF while parsing a value", false);
            }
            Object value = read(p, first, 0);
            if (p.nextToken() != null) {
                throw new JsonException("trailing characters", false);
            }
            return value;
        } catch (IOException e) {
            throw new JsonException(e.getMessage(), false);
        }
    }

    private static Object read(JsonParser p, JsonToken t, int depth) throws IOException, JsonException {
        switch (t) {
            case START_OBJECT: {
                if (depth + 1 > MAX_DEPTH) {
                    throw new JsonException("recursion limit exceeded", true);
                }
                Map<String, Object> m = new LinkedHashMap<>();
                for (JsonToken k = p.nextToken(); k != JsonToken.END_OBJECT; k = p.nextToken()) {
                    String name = text(p.currentName());
                    m.remove(name); // a repeated key: the last value, as serde_json keeps it
                    m.put(name, read(p, p.nextToken(), depth + 1));
                }
                return m;
            }
            case START_ARRAY: {
                if (depth + 1 > MAX_DEPTH) {
                    throw new JsonException("recursion limit exceeded", true);
                }
                List<Object> l = new ArrayList<>();
                for (JsonToken v = p.nextToken(); v != JsonToken.END_ARRAY; v = p.nextToken()) {
                    l.add(read(p, v, depth + 1));
                }
                return l;
            }
            case VALUE_STRING:
                return text(p.getText());
            case VALUE_NUMBER_INT:
                return integer(p.getText());
            case VALUE_NUMBER_FLOAT:
                return finite(p.getText());
            case VALUE_TRUE:
                return Boolean.TRUE;
            case VALUE_FALSE:
                return Boolean.FALSE;
            case VALUE_NULL:
                return null;
            default:
                throw new JsonException("unexpected " + t, false);
        }
    }

    /** A string with a lone surrogate (an escaped lone surrogate, U+D800 to U+DFFF) is not JSON to serde_json. */
    private static String text(String s) throws JsonException {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                    continue;
                }
                throw new JsonException("lone surrogate", false);
            }
            if (Character.isLowSurrogate(c)) {
                throw new JsonException("lone surrogate", false);
            }
        }
        return s;
    }

    private static Object integer(String token) throws JsonException {
        if (token.equals("-0")) {
            return -0.0; // serde_json reads -0 as the float -0.0
        }
        if (token.length() < 19) {
            return Long.parseLong(token);
        }
        BigInteger v = new BigInteger(token);
        if (v.bitLength() < 64) {
            return v.longValue();
        }
        if (v.signum() > 0 && v.compareTo(U64_MAX) <= 0) {
            return v;
        }
        if (v.compareTo(I64_MIN) == 0) {
            return Long.MIN_VALUE;
        }
        return finite(token);
    }

    private static Double finite(String token) throws JsonException {
        double d = Double.parseDouble(token);
        if (Double.isInfinite(d)) {
            throw new JsonException("number out of range", false);
        }
        return d;
    }

    // ---- the canonical text ----

    /** Orders strings by code point, as Rust orders UTF-8 bytes (not by UTF-16 unit). */
    static final Comparator<String> CODE_POINT_ORDER = (a, b) -> {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    };

    /** The canonical text of a value: compact, keys by code point, serde_json's escapes and numbers. */
    public static String write(Object value) {
        StringBuilder out = new StringBuilder();
        write(out, value);
        return out.toString();
    }

    @SuppressWarnings("unchecked")
    static void write(StringBuilder out, Object v) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof String) {
            string(out, (String) v);
        } else if (v instanceof Boolean || v instanceof Long || v instanceof Integer || v instanceof BigInteger) {
            out.append(v);
        } else if (v instanceof Double) {
            out.append(formatDouble((Double) v));
        } else if (v instanceof Map) {
            Map<String, Object> m = (Map<String, Object>) v;
            List<String> keys = new ArrayList<>(m.keySet());
            keys.sort(CODE_POINT_ORDER);
            out.append('{');
            for (int i = 0; i < keys.size(); i++) {
                if (i > 0) {
                    out.append(',');
                }
                string(out, keys.get(i));
                out.append(':');
                write(out, m.get(keys.get(i)));
            }
            out.append('}');
        } else if (v instanceof List) {
            out.append('[');
            List<Object> l = (List<Object>) v;
            for (int i = 0; i < l.size(); i++) {
                if (i > 0) {
                    out.append(',');
                }
                write(out, l.get(i));
            }
            out.append(']');
        } else {
            throw new IllegalArgumentException("not a JSON value: " + v.getClass());
        }
    }

    /** serde_json's escapes: \" \\ \b \f \n \r \t, other controls as backslash-u00xx, the rest as is. */
    static void string(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        out.append("\\u00").append(Character.forDigit(c >> 4, 16)).append(Character.forDigit(c & 15, 16));
                    } else {
                        out.append(c);
                    }
            }
        }
        out.append('"');
    }

    /**
     * serde_json's text of a double: the shortest digits that read back as {@code d} (the nearest
     * of them), fixed notation when the decimal exponent is within [-5, 16), else {@code d.ddde±x}.
     * Java 17's Double.toString is not always shortest, so the digits are searched for.
     */
    public static String formatDouble(double d) {
        if (d == 0) {
            return (Double.doubleToRawLongBits(d) < 0) ? "-0.0" : "0.0";
        }
        String sign = d < 0 ? "-" : "";
        BigDecimal exact = new BigDecimal(Math.abs(d));
        BigDecimal best = null;
        for (int p = 1; p <= 17 && best == null; p++) {
            for (RoundingMode mode : new RoundingMode[] {RoundingMode.FLOOR, RoundingMode.CEILING}) {
                BigDecimal c = exact.round(new MathContext(p, mode));
                if (Double.parseDouble(c.toString()) == Math.abs(d)
                        && (best == null || c.subtract(exact).abs().compareTo(best.subtract(exact).abs()) < 0)) {
                    best = c;
                }
            }
        }
        if (best == null) {
            best = exact.round(MathContext.DECIMAL64);
        }
        best = best.stripTrailingZeros();
        String digits = best.unscaledValue().toString();
        int exp10 = -best.scale();
        int n = digits.length();
        int kk = n + exp10;
        String body;
        if (exp10 >= 0 && kk <= 16) {
            body = digits + "0".repeat(exp10) + ".0";
        } else if (kk > 0 && kk <= 16) {
            body = digits.substring(0, kk) + "." + digits.substring(kk);
        } else if (kk > -5 && kk <= 0) {
            body = "0." + "0".repeat(-kk) + digits;
        } else {
            int e = kk - 1;
            body = digits.charAt(0) + (n > 1 ? "." + digits.substring(1) : "") + "e" + (e >= 0 ? "+" : "-") + Math.abs(e);
        }
        return sign + body;
    }
}
