package com.popbillbridge.events;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * tests/vectors/: every record decodes to its canonical form, byte for byte the text the Rust
 * crate wrote (the synthetic ones of tests/vectors/synthetic/ too). A difference fails here, in
 * the language that differs.
 */
class VectorConformanceTest {
    static List<Vectors.Vector> vectors() throws IOException {
        List<Vectors.Vector> all = new java.util.ArrayList<>(Vectors.all());
        all.addAll(Vectors.synthetic());
        return all;
    }

    @Test
    void theVectorsAreThere() throws IOException {
        // 13 samples, 19 odd inputs, the re-driven record; 16 written by hand.
        assertTrue(Vectors.all().size() >= 33, "vectors: " + Vectors.all());
        assertTrue(Vectors.synthetic().size() >= 16, "synthetic: " + Vectors.synthetic());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("vectors")
    void everyVectorDecodesToItsCanonicalForm(Vectors.Vector v) {
        assertEquals(v.decoded(), Vectors.canonical(v.record()) + "\n", v.name());
    }
}
