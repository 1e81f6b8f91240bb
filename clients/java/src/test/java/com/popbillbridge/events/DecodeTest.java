package com.popbillbridge.events;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Decoding, dates, JSON and the gate beyond the vectors: where Java's own parsing differs from
 * serde_json's and is brought in line, and the gate's window, cap and staleness
 * (crates/popbill-events/src/gate.rs has the same tests).
 */
class DecodeTest {
    static final long T0 = 1_763_114_400_000L;

    static RawRecord record(String body, String... headers) {
        List<RawRecord.RawHeader> h = new java.util.ArrayList<>();
        for (int i = 0; i < headers.length; i += 2) {
            h.add(new RawRecord.RawHeader(headers[i], headers[i + 1].getBytes(StandardCharsets.UTF_8)));
        }
        return new RawRecord(null, body == null ? null : body.getBytes(StandardCharsets.UTF_8), h, null);
    }

    static Delivery delivery(String id, String item, String stateDt, long atSecs) throws DecodeException {
        String body = "{\"corpNum\":\"1234567890\",\"itemKey\":\"" + item + "\",\"stateDT\":\"" + stateDt + "\"}";
        RawRecord r = record(body, "ce_id", id, "pb-webhook-type", "TAXINVOICE.STATE");
        return RecordDecoder.decode(new RawRecord(null, r.value(), r.headers(), T0 + atSecs * 1000));
    }

    static String kind(byte[] value) {
        try {
            RecordDecoder.decode(new RawRecord(null, value,
                    List.of(new RawRecord.RawHeader("ce_id", "m".getBytes(StandardCharsets.UTF_8))), null));
            return null;
        } catch (DecodeException.Body e) {
            return e.kind + (e.validUpTo >= 0 ? "@" + e.validUpTo : "");
        } catch (DecodeException e) {
            return "not_a_delivery";
        }
    }

    @Test
    void doublesPrintAsSerdeJsonPrintsThem() {
        Object[][] cases = {{1.0, "1.0"}, {1e300, "1e+300"}, {0.1, "0.1"}, {1e16, "1e+16"},
            {1e15, "1000000000000000.0"}, {0.00001, "0.00001"}, {1e-6, "1e-6"}, {-0.0, "-0.0"},
            {-1.25e-5, "-0.0000125"}, {123456789012345678901.0, "1.2345678901234568e+20"},
            // Java 17's Double.toString gives 2.82879384806159008E17: not the shortest.
            {2.82879384806159E17, "2.82879384806159e+17"}, {5e-324, "5e-324"}};
        for (Object[] c : cases) {
            assertEquals(c[1], Json.formatDouble((Double) c[0]));
        }
    }

    @Test
    void jsonThatJacksonAcceptsAndSerdeJsonDoesNotIsRefused() throws Json.JsonException {
        for (String text : new String[] {"NaN", "[1e400]", "\"\\ud800\"", "{} {}", "[".repeat(128) + "]".repeat(128)}) {
            assertThrows(Json.JsonException.class, () -> Json.parse(text), text);
        }
        assertTrue(assertThrows(Json.JsonException.class, () -> Json.parse("[".repeat(128) + "]".repeat(128))).tooDeep);
        assertEquals(-0.0, Json.parse("-0"));
        assertInstanceOf(java.math.BigInteger.class, Json.parse("18446744073709551615"));
        assertInstanceOf(Double.class, Json.parse("18446744073709551616"));
        assertEquals(Map.of("a", 2L), Json.parse("{\"a\":1,\"a\":2}"));
        assertEquals("{\"A\":1,\"\uffff\":2,\"\ud83d\ude00\":3}",
                Json.write(Json.parse("{\"\ud83d\ude00\":3,\"\uffff\":2,\"A\":1}")), "code point order, not UTF-16");
    }

    @Test
    void bodyErrorsHaveTheKindsOfTheRustCrate() {
        assertEquals("missing", kind(null));
        assertEquals("empty", kind(" \r\n\f".getBytes(StandardCharsets.UTF_8)));
        assertEquals("not_json", kind(new byte[] {0x0b}), "vertical tab is not ASCII white space to Rust");
        assertEquals("not_utf8@6", kind(new byte[] {'{', '"', 'a', '"', ':', '"', (byte) 0xff, '"', '}'}));
        assertEquals("not_object", kind("[1]".getBytes(StandardCharsets.UTF_8)));
        assertEquals("too_deep", kind(("[".repeat(200) + "]".repeat(200)).getBytes(StandardCharsets.UTF_8)));
        assertThrows(DecodeException.NotADelivery.class, () -> RecordDecoder.decode(record("{}")));
    }

    @Test
    void fieldsAreReadTolerantlyAndUntypedValuesStayInExtra() throws DecodeException {
        Delivery d = RecordDecoder.decode(record(
                "{\"corpNum\":\" 1 \",\"itemKey\":\"K\",\"stateCode\":\"1,100\",\"ntsConfirmNum\":{\"x\":1},"
                        + "\"STATEDT\":\"20251114093010\",\"eventDT\":\"\",\"\u017ftateCode\":5}",
                "ce_id", "m", "pb-webhook-type", "taxinvoice.state"));
        Event.TaxInvoice e = assertInstanceOf(Event.TaxInvoice.class, d.event());
        assertEquals("1", e.corpNum());
        assertEquals(1100L, e.stateCode());
        assertEquals("20251114093010", e.stateDt().raw());
        assertEquals(null, e.eventDt());
        assertEquals(Map.of("ntsConfirmNum", Map.of("x", 1L), "\u017ftateCode", 5L), e.extra(),
                "U+017F is not an ASCII s, whatever equalsIgnoreCase says");
        Delivery u = RecordDecoder.decode(record("{\"a\":1}", "ce_id", "m", "pb-webhook-type", " FAX.STATE "));
        assertEquals("FAX.STATE", assertInstanceOf(Event.Unknown.class, u.event()).webhookType());
    }

    @Test
    void instantsAreAtAFixedPlusNineHoursAsInRustAndPython() {
        // Asia/Seoul was +10:00 (summer time) on 1987-05-10 and +08:30 in 1955; POPBiLL's
        // dates, the bridge's ce_time and the other libraries mean +09:00.
        assertEquals(Instant.parse("1987-05-10T03:00:00Z"), PbDateTime.parse("19870510120000").instant().orElseThrow());
        assertEquals(Instant.parse("1955-06-01T03:00:00Z"), PbDateTime.parse("19550601120000").instant().orElseThrow());
        assertEquals(Instant.parse("-0001-12-31T15:00:00Z"), PbDateTime.parse("00000101000000").instant().orElseThrow());
    }

    @Test
    void datesAreKoreanTimeAndImpossibleOnesKeepTheirError() {
        PbDateTime t = PbDateTime.parse("20251114093011");
        assertEquals("2025-11-14T09:30:11+09:00[Asia/Seoul]", t.zoned().orElseThrow().toString());
        assertEquals(Instant.parse("2025-11-14T00:30:11Z"), t.instant().orElseThrow());
        String[][] bad = {{"20250230093011", "invalid"}, {"20250229093011", "invalid"}, {"20251114240000", "invalid"},
            {"20251114093060", "invalid"}, {"2025111409301", "wrong_length"},
            {"\uff12\uff10\uff12\uff15\uff11\uff11\uff11\uff14\uff10\uff19\uff13\uff10", "wrong_length"},
            {"2025-11-14T09:", "not_digits"}};
        for (String[] b : bad) {
            PbDateTime x = PbDateTime.parse(b[0]);
            assertFalse(x.isValid(), b[0]);
            assertEquals(b[1], x.error().orElseThrow().canonical, b[0]);
        }
        assertTrue(PbDateTime.parse("20240229120000").isValid());
        assertTrue(PbDateTime.PbDate.parse("00000229").isValid(), "year 0 is a leap year, as in jiff");
    }

    @Test
    void equalStateDtAppliesOlderIsStaleAndItsCopyADuplicate() throws DecodeException {
        Gate g = new Gate(new InMemoryGateStore(Duration.ofSeconds(60), 1_000_000));
        assertEquals(Verdict.APPLY, g.admit(delivery("a", "K", "20251114093010", 0)));
        assertEquals(Verdict.APPLY, g.admit(delivery("b", "K", "20251114093010", 1)));
        assertInstanceOf(Verdict.Stale.class, g.admit(delivery("c", "K", "20251114093009", 2)));
        assertEquals(Verdict.DUPLICATE, g.admit(delivery("c", "K", "20251114093009", 3)));
        assertEquals(Verdict.APPLY, g.admit(delivery("d", "K", "20250230093010", 4)), "an invalid stateDT never orders");
        assertEquals(Verdict.DUPLICATE, g.check(delivery("a", "K", "20251114093010", 5)));
    }

    @Test
    void idsAndDocumentsExpireAfterTheWindowAndTheCountIsCapped() throws DecodeException {
        InMemoryGateStore store = new InMemoryGateStore(Duration.ofSeconds(60), 1_000_000);
        Gate g = new Gate(store);
        g.admit(delivery("a", "K", "20251114093010", 0));
        g.admit(delivery("z", "other", "20251114093010", 61));
        assertEquals(1, store.rememberedIds());
        assertEquals(1, store.rememberedDocuments());
        assertEquals(Verdict.APPLY, g.check(delivery("a", "K", "20251114093000", 62)));

        store = new InMemoryGateStore(Duration.ofHours(1), 2);
        g = new Gate(store);
        for (int i = 0; i < 3; i++) {
            String id = String.valueOf((char) ('a' + i));
            g.admit(delivery(id, id, "20251114093010", i));
        }
        assertEquals(2, store.rememberedIds());
        assertEquals(2, store.rememberedDocuments());
        assertEquals(Verdict.APPLY, g.check(delivery("a", "a", "20251114093010", 4)));
        assertEquals(Verdict.DUPLICATE, g.check(delivery("c", "c", "20251114093010", 4)));
    }

    @Test
    void aDocumentTouchedAgainIsKept() throws DecodeException {
        Gate g = new Gate(new InMemoryGateStore(Duration.ofSeconds(60), 1_000_000));
        g.admit(delivery("a", "K", "20251114093010", 0));
        g.admit(delivery("b", "K", "20251114093020", 50));
        g.admit(delivery("c", "other", "20251114093010", 70));
        assertInstanceOf(Verdict.Stale.class, g.check(delivery("d", "K", "20251114093015", 71)));
    }

    @Test
    void theConsumerReadsCommittedWhateverItWasGiven() {
        java.util.Properties p = new java.util.Properties();
        p.put("isolation.level", "read_uncommitted");
        assertEquals("read_committed", ConsumerSettings.apply(p).get("isolation.level"));
    }
}
