package com.popbillbridge.events;

import com.popbillbridge.events.PbDateTime.PbDate;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The body, from which each typed field is taken (crates/popbill-events/src/fields.rs): a value
 * read into a typed field leaves the map, one that cannot be typed stays, so an event's
 * {@code extra} holds everything not typed. Blank values (null, white space) are absent.
 */
final class Fields {
    private final Map<String, Object> body;

    Fields(Map<String, Object> body) {
        this.body = body;
    }

    Map<String, Object> rest() {
        return body;
    }

    private String key(String... names) {
        for (String n : names) {
            if (body.containsKey(n)) {
                return n;
            }
        }
        // The first in serde_json's map order (by key) that differs only in ASCII case.
        List<String> keys = null;
        for (String k : body.keySet()) {
            for (String n : names) {
                if (Text.asciiEqualsIgnoreCase(k, n)) {
                    if (keys == null) {
                        keys = new ArrayList<>();
                    }
                    keys.add(k);
                }
            }
        }
        if (keys == null) {
            return null;
        }
        keys.sort(Json.CODE_POINT_ORDER);
        return keys.get(0);
    }

    private <T> T take(Function<Object, T> read, String... names) {
        String k = key(names);
        if (k == null) {
            return null;
        }
        Object v = body.get(k);
        if (v == null || (v instanceof String && Text.trim((String) v).isEmpty())) {
            body.remove(k);
            return null;
        }
        T out = read.apply(v);
        if (out != null) {
            body.remove(k);
        }
        return out;
    }

    String text(String... names) {
        return take(Fields::scalarText, names);
    }

    Long integer(String... names) {
        return take(Fields::toInteger, names);
    }

    /** An unsigned 32-bit field ({@code stateCode}): a negative or larger value stays in extra. */
    Long u32(String... names) {
        return take(v -> {
            Long i = toInteger(v);
            return i != null && i >= 0 && i <= 0xFFFF_FFFFL ? i : null;
        }, names);
    }

    PbDateTime dateTime(String... names) {
        return take(v -> {
            String s = scalarText(v);
            return s == null ? null : PbDateTime.parse(s);
        }, names);
    }

    PbDate date(String... names) {
        return take(v -> {
            String s = scalarText(v);
            return s == null ? null : PbDate.parse(s);
        }, names);
    }

    /** A string (trimmed), a number or a boolean as text; numbers in serde_json's form. */
    static String scalarText(Object v) {
        if (v instanceof String) {
            return Text.trim((String) v);
        }
        if (v instanceof Double) {
            return Json.formatDouble((Double) v);
        }
        if (v instanceof Long || v instanceof BigInteger || v instanceof Boolean) {
            return v.toString();
        }
        return null;
    }

    /** An integer sent as a number or a string ({@code 300}, {@code "300"}, {@code " 1,100,000 "}). */
    static Long toInteger(Object v) {
        if (v instanceof Long) {
            return (Long) v;
        }
        double f;
        if (v instanceof BigInteger) {
            f = ((BigInteger) v).doubleValue(); // above i64: serde_json's as_f64
        } else if (v instanceof Double) {
            f = (Double) v;
        } else if (v instanceof String) {
            String s = Text.trim((String) v);
            if (s.indexOf(',') >= 0) {
                s = s.replace(",", "");
            }
            return Text.parseI64(s);
        } else {
            return null;
        }
        // 300.0 is 300; 300.5 or 1e300 is not an integer we keep.
        return Math.abs(f) < 9.0e15 && f == Math.rint(f) ? (long) f : null;
    }
}
