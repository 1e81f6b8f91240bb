package com.popbillbridge.events;

import java.nio.charset.StandardCharsets;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.util.Objects;
import java.util.Optional;

/**
 * A {@code yyyyMMddHHmmss} field in Korean time: the text as POPBiLL sent it, and its meaning
 * ({@link #localDateTime()}, {@link #zoned()} in Asia/Seoul) or why it has none ({@link #error()}).
 * Feb 30, month 13, hour 24 and second 60 are values with an error, never an exception at
 * decode time and never a silently shifted date (java.time's lenient resolvers are not used).
 */
public final class PbDateTime {
    /** Korea's zone. Since 1988 it is UTC+9 all year, as the Rust crate assumes for every date. */
    public static final ZoneId SEOUL = ZoneId.of("Asia/Seoul");
    /** The fixed offset every POPBiLL date-time means, as in the Rust and Python libraries. */
    public static final java.time.ZoneOffset KST = java.time.ZoneOffset.ofHours(9);

    /** Why a date field could not be read; {@link #canonical} is the name the vectors use. */
    public enum DateError {
        /** Not 14 (date-time) or 8 (date) bytes. */
        WRONG_LENGTH("wrong_length"),
        /** Something other than ASCII digits. */
        NOT_DIGITS("not_digits"),
        /** Digits, but no such day or time. */
        INVALID("invalid");

        /** The kind in the canonical form. */
        public final String canonical;

        DateError(String canonical) {
            this.canonical = canonical;
        }
    }

    private final String raw;
    private final LocalDateTime value;
    private final DateError error;

    private PbDateTime(String raw, LocalDateTime value, DateError error) {
        this.raw = raw;
        this.value = value;
        this.error = error;
    }

    /** Reads {@code s}; never throws (an invalid value keeps its error). */
    public static PbDateTime parse(String s) {
        int[] d = new int[14];
        DateError e = digits(s, d);
        if (e != null) {
            return new PbDateTime(s, null, e);
        }
        try {
            LocalDateTime t = LocalDateTime.of(
                    d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3], d[4] * 10 + d[5], d[6] * 10 + d[7],
                    d[8] * 10 + d[9], d[10] * 10 + d[11], d[12] * 10 + d[13]);
            return new PbDateTime(s, t, null);
        } catch (DateTimeException ex) {
            return new PbDateTime(s, null, DateError.INVALID);
        }
    }

    /**
     * Fills {@code out} with the digits of {@code s} when it is exactly {@code out.length} ASCII
     * digits. The length is in UTF-8 bytes, as the Rust crate counts it: full-width digits are
     * "wrong length", not "not digits".
     */
    static DateError digits(String s, int[] out) {
        if (s.getBytes(StandardCharsets.UTF_8).length != out.length) {
            return DateError.WRONG_LENGTH;
        }
        for (int i = 0; i < out.length; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return DateError.NOT_DIGITS;
            }
            out[i] = c - '0';
        }
        return null;
    }

    /** The text as POPBiLL sent it. */
    public String raw() {
        return raw;
    }

    /** True when the text is a real date and time. */
    public boolean isValid() {
        return value != null;
    }

    /** Why the text means nothing, or empty when it is valid. */
    public Optional<DateError> error() {
        return Optional.ofNullable(error);
    }

    /** The Korean wall-clock date-time. */
    public Optional<LocalDateTime> localDateTime() {
        return Optional.ofNullable(value);
    }

    /**
     * The date-time in Asia/Seoul. Its offset follows the zone's history (+10:00 in the summers
     * of 1987 and 1988, +08:30 in the 1950s, local mean time before 1908), so for such dates its
     * instant is not {@link #instant()}'s.
     */
    public Optional<ZonedDateTime> zoned() {
        return localDateTime().map(t -> t.atZone(SEOUL));
    }

    /**
     * The instant at the fixed +09:00 ({@link #KST}), as the Rust and Python libraries and the
     * bridge's {@code ce_time} take it, whatever Asia/Seoul's offset was on that date.
     */
    public Optional<Instant> instant() {
        return localDateTime().map(t -> t.toInstant(KST));
    }

    /** {@code 2025-11-14T09:30:11+09:00}: the canonical form's value. */
    String canonicalValue() {
        LocalDateTime t = value;
        return t == null ? null : String.format(java.util.Locale.ROOT, "%04d-%02d-%02dT%02d:%02d:%02d+09:00", t.getYear(),
                t.getMonthValue(), t.getDayOfMonth(), t.getHour(), t.getMinute(), t.getSecond());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PbDateTime && ((PbDateTime) o).raw.equals(raw);
    }

    @Override
    public int hashCode() {
        return Objects.hash(raw);
    }

    @Override
    public String toString() {
        return raw;
    }

    /** A {@code yyyyMMdd} field: a calendar day in Korea. */
    public static final class PbDate {
        private final String raw;
        private final LocalDate value;
        private final DateError error;

        private PbDate(String raw, LocalDate value, DateError error) {
            this.raw = raw;
            this.value = value;
            this.error = error;
        }

        /** Reads {@code s}; never throws. */
        public static PbDate parse(String s) {
            int[] d = new int[8];
            DateError e = digits(s, d);
            if (e != null) {
                return new PbDate(s, null, e);
            }
            try {
                return new PbDate(s, LocalDate.of(d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3],
                        d[4] * 10 + d[5], d[6] * 10 + d[7]), null);
            } catch (DateTimeException ex) {
                return new PbDate(s, null, DateError.INVALID);
            }
        }

        /** The text as POPBiLL sent it. */
        public String raw() {
            return raw;
        }

        /** True when the text is a real date. */
        public boolean isValid() {
            return value != null;
        }

        /** Why the text means nothing, or empty. */
        public Optional<DateError> error() {
            return Optional.ofNullable(error);
        }

        /** The date. */
        public Optional<LocalDate> date() {
            return Optional.ofNullable(value);
        }

        String canonicalValue() {
            return value == null ? null
                    : String.format(java.util.Locale.ROOT, "%04d-%02d-%02d", value.getYear(), value.getMonthValue(), value.getDayOfMonth());
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof PbDate && ((PbDate) o).raw.equals(raw);
        }

        @Override
        public int hashCode() {
            return raw.hashCode();
        }

        @Override
        public String toString() {
            return raw;
        }
    }
}
