package com.popbillbridge.events;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** tests/vectors/: each record as a RawRecord, beside its canonical decoded text. */
final class Vectors {
    private Vectors() {}

    record Vector(String name, RawRecord record, String decoded) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Path dir() {
        String configured = System.getProperty("popbill.vectors");
        return configured != null ? Path.of(configured) : Path.of("../../tests/vectors");
    }

    static Path root() {
        return dir().resolve("../..").normalize();
    }

    /** A vector's bytes: text when UTF-8, else {"base64": …}. */
    @SuppressWarnings("unchecked")
    static byte[] bytes(Object v) {
        if (v == null) {
            return null;
        }
        if (v instanceof String) {
            return ((String) v).getBytes(StandardCharsets.UTF_8);
        }
        return Base64.getDecoder().decode((String) ((Map<String, Object>) v).get("base64"));
    }

    /** Parsed with the library's own reader: the files are plain JSON. */
    static Object json(String text) {
        try {
            return Json.parse(text);
        } catch (Json.JsonException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The records the bridge wrote. */
    static List<Vector> all() throws IOException {
        return in(dir(), "");
    }

    /** The records of synthetic/, written by hand. */
    static List<Vector> synthetic() throws IOException {
        return in(dir().resolve("synthetic"), "synthetic/");
    }

    @SuppressWarnings("unchecked")
    private static List<Vector> in(Path directory, String prefix) throws IOException {
        List<Vector> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(directory)) {
            for (Path p : files.sorted().toList()) {
                String file = p.getFileName().toString();
                if (!file.endsWith(".record.json")) {
                    continue;
                }
                String name = file.substring(0, file.length() - ".record.json".length());
                Map<String, Object> r = (Map<String, Object>) json(Files.readString(p));
                List<RawRecord.RawHeader> headers = new ArrayList<>();
                for (Object h : (List<Object>) r.get("headers")) {
                    List<Object> pair = (List<Object>) h;
                    headers.add(new RawRecord.RawHeader((String) pair.get(0), bytes(pair.get(1))));
                }
                RawRecord record = new RawRecord(bytes(r.get("key")), bytes(r.get("value")), headers,
                        (Long) r.get("timestamp"));
                String decoded = Files.readString(directory.resolve(name + ".decoded.json"));
                out.add(new Vector(prefix + name, record, decoded));
            }
        }
        return out;
    }

    /** The canonical text of whatever decoding gives. */
    static String canonical(RawRecord r) {
        try {
            return Canonical.json(RecordDecoder.decode(r));
        } catch (DecodeException e) {
            return Canonical.json(e);
        }
    }

}
