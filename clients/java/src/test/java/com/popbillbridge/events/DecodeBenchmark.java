package com.popbillbridge.events;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Decode cost per record: every vector of tests/vectors/ decoded (and passed through the gate) in
 * a loop, after a warm-up. Prints figures; asserts nothing. Not a *Test, so Surefire runs it only
 * when named:
 *
 * <pre>mvn -f clients/java test -Dtest=DecodeBenchmark [-Dbench.seconds=2]</pre>
 */
class DecodeBenchmark {
    static volatile Object sink;

    static void run(String label, List<RawRecord> items, Consumer<RawRecord> step, double seconds) {
        long n = 0;
        long start = System.nanoTime();
        long until = start + (long) (seconds * 1e9);
        while (System.nanoTime() < until) {
            for (RawRecord r : items) {
                step.accept(r);
            }
            n += items.size();
        }
        double per = (System.nanoTime() - start) / (double) n;
        System.out.printf("java   %-22s %8.2f us/record  (%d records, %d vectors)%n", label, per / 1000, n, items.size());
    }

    @Test
    void decodeCostPerRecord() throws Exception {
        double seconds = Double.parseDouble(System.getProperty("bench.seconds", "2"));
        List<RawRecord> records = new ArrayList<>();
        for (Vectors.Vector v : Vectors.all()) {
            records.add(v.record());
        }
        Consumer<RawRecord> decode = r -> {
            try {
                sink = RecordDecoder.decode(r);
            } catch (DecodeException e) {
                sink = e;
            }
        };
        run("(warm-up)", records, decode, seconds);
        run("decode", records, decode, seconds);
        run("decode + canonical", records, r -> sink = Vectors.canonical(r), seconds);
        List<RawRecord> deliveries = new ArrayList<>();
        for (RawRecord r : records) {
            try {
                RecordDecoder.decode(r);
                deliveries.add(r);
            } catch (DecodeException e) {
                // a dead letter: nothing to gate
            }
        }
        Gate gate = new Gate();
        List<Delivery> decoded = new ArrayList<>();
        for (RawRecord r : deliveries) {
            decoded.add(RecordDecoder.decode(r));
        }
        long n = 0;
        long start = System.nanoTime();
        while (System.nanoTime() - start < seconds * 1e9) {
            for (Delivery d : decoded) {
                sink = gate.admit(d);
            }
            n += decoded.size();
        }
        System.out.printf("java   %-22s %8.2f us/record  (%d records, %d vectors)%n", "gate.admit",
                (System.nanoTime() - start) / (double) n / 1000, n, decoded.size());
    }
}
