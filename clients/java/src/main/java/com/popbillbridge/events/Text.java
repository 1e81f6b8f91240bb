package com.popbillbridge.events;

/** Text rules of the Rust crate, which Java's own differ from. */
final class Text {
    private Text() {}

    /** Unicode White_Space: Rust's char::is_whitespace (String.strip differs: no U+00A0, U+0085). */
    static boolean isWhiteSpace(char c) {
        return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680
                || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F
                || c == 0x205F || c == 0x3000;
    }

    /** Rust's str::trim. */
    static String trim(String s) {
        int start = 0;
        int end = s.length();
        while (start < end && isWhiteSpace(s.charAt(start))) {
            start++;
        }
        while (end > start && isWhiteSpace(s.charAt(end - 1))) {
            end--;
        }
        return start == 0 && end == s.length() ? s : s.substring(start, end);
    }

    /** Rust's eq_ignore_ascii_case (equalsIgnoreCase also folds U+017F to s, U+212A to k). */
    static boolean asciiEqualsIgnoreCase(String a, String b) {
        if (a.length() != b.length()) {
            return false;
        }
        for (int i = 0; i < a.length(); i++) {
            char x = a.charAt(i);
            char y = b.charAt(i);
            if (x != y && (x >= 0x80 || y >= 0x80 || Character.toLowerCase(x) != Character.toLowerCase(y))) {
                return false;
            }
        }
        return true;
    }

    /** Lower-cases ASCII letters only (what eq_ignore_ascii_case compares). */
    static String asciiLower(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= 'A' && c <= 'Z') {
                char[] out = s.toCharArray();
                for (int j = i; j < out.length; j++) {
                    if (out[j] >= 'A' && out[j] <= 'Z') {
                        out[j] = (char) (out[j] + 32);
                    }
                }
                return new String(out);
            }
        }
        return s;
    }

    /** Rust's i64 FromStr: an optional sign, then ASCII digits (Long.parseLong takes other digits). */
    static Long parseI64(String s) {
        int i = (s.startsWith("+") || s.startsWith("-")) ? 1 : 0;
        if (i == s.length()) {
            return null;
        }
        for (int j = i; j < s.length(); j++) {
            char c = s.charAt(j);
            if (c < '0' || c > '9') {
                return null;
            }
        }
        try {
            return Long.parseLong(s.startsWith("+") ? s.substring(1) : s);
        } catch (NumberFormatException e) {
            return null; // out of range
        }
    }

    /**
     * The bytes as UTF-8, each maximal subpart of an ill-formed sequence replaced by one U+FFFD
     * (Unicode's recommended practice, as Rust's from_utf8_lossy and Python's "replace" do; an
     * encoded surrogate ED A0 80 is three). {@code new String(b, UTF_8)} replaces differently.
     */
    public static String lossyUtf8(byte[] b) {
        StringBuilder sb = new StringBuilder(b.length);
        int i = 0;
        int n = b.length;
        while (i < n) {
            int c = b[i] & 0xFF;
            if (c < 0x80) {
                sb.append((char) c);
                i++;
                continue;
            }
            int need;
            int cp;
            int min = 0x80;
            int max = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                need = 1;
                cp = c & 0x1F;
            } else if (c >= 0xE0 && c <= 0xEF) {
                need = 2;
                cp = c & 0x0F;
                if (c == 0xE0) {
                    min = 0xA0;
                } else if (c == 0xED) {
                    max = 0x9F;
                }
            } else if (c >= 0xF0 && c <= 0xF4) {
                need = 3;
                cp = c & 0x07;
                if (c == 0xF0) {
                    min = 0x90;
                } else if (c == 0xF4) {
                    max = 0x8F;
                }
            } else {
                sb.append('\uFFFD');
                i++;
                continue;
            }
            int j = i + 1;
            boolean ok = true;
            for (int k = 0; k < need; k++, j++) {
                int d = j < n ? b[j] & 0xFF : -1;
                if (d < (k == 0 ? min : 0x80) || d > (k == 0 ? max : 0xBF)) {
                    ok = false;
                    break;
                }
                cp = (cp << 6) | (d & 0x3F);
            }
            if (ok) {
                sb.appendCodePoint(cp);
            } else {
                sb.append('\uFFFD');
            }
            // The offending byte (if any) starts the next sequence.
            i = j;
        }
        return sb.toString();
    }
}
