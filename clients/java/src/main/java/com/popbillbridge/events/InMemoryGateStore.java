package com.popbillbridge.events;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The Rust gate's memory: ids and documents for {@code window} of record time (not wall-clock
 * time, so that reading old records back does not expire them early), at most
 * {@code maxEntries} of each, the oldest forgotten first. Not thread-safe: one per consumer
 * thread, as partitions are.
 */
public final class InMemoryGateStore implements GateStore {
    private final Duration window;
    private final int maxEntries;
    private final Set<String> ids = new HashSet<>();
    private final ArrayDeque<Map.Entry<Instant, String>> idTimes = new ArrayDeque<>();
    private final Map<Event.DocumentKey, Applied> documents = new HashMap<>();
    private final ArrayDeque<Map.Entry<Instant, Event.DocumentKey>> documentTimes = new ArrayDeque<>();
    private Instant now;

    private static final class Applied {
        LocalDateTime stateDt;
        Instant touched;

        Applied(LocalDateTime stateDt, Instant touched) {
            this.stateDt = stateDt;
            this.touched = touched;
        }
    }

    /** 48 hours (the bridge's own window), a million of each. */
    public InMemoryGateStore() {
        this(Duration.ofHours(48), 1_000_000);
    }

    /** Remembers for {@code window} of record time, at most {@code maxEntries} ids and documents. */
    public InMemoryGateStore(Duration window, int maxEntries) {
        this.window = window;
        this.maxEntries = Math.max(1, maxEntries);
    }

    @Override
    public boolean seen(String id) {
        return ids.contains(id);
    }

    @Override
    public Optional<LocalDateTime> appliedState(Event.DocumentKey document) {
        Applied a = documents.get(document);
        return a == null ? Optional.empty() : Optional.of(a.stateDt);
    }

    @Override
    public void remember(String id, Event.DocumentKey document, LocalDateTime stateDt, Instant at) {
        now = now == null || at.isAfter(now) ? at : now;
        if (ids.add(id)) {
            idTimes.addLast(Map.entry(at, id));
        }
        if (document != null && stateDt != null) {
            Applied a = documents.computeIfAbsent(document, d -> new Applied(stateDt, at));
            if (stateDt.isAfter(a.stateDt)) {
                a.stateDt = stateDt;
            }
            if (at.isAfter(a.touched)) {
                a.touched = at;
            }
            documentTimes.addLast(Map.entry(a.touched, document));
        }
        expire();
    }

    /** How many ids are remembered. */
    public int rememberedIds() {
        return ids.size();
    }

    /** How many documents' states are remembered. */
    public int rememberedDocuments() {
        return documents.size();
    }

    private boolean old(Instant t) {
        return Duration.between(t, now).compareTo(window) > 0;
    }

    private void expire() {
        while (!idTimes.isEmpty()) {
            Instant t = idTimes.peekFirst().getKey();
            if (!old(t) && ids.size() <= maxEntries) {
                break;
            }
            ids.remove(idTimes.pollFirst().getValue());
        }
        while (!documentTimes.isEmpty()) {
            Instant t = documentTimes.peekFirst().getKey();
            if (!old(t) && documents.size() <= maxEntries) {
                break;
            }
            Map.Entry<Instant, Event.DocumentKey> e = documentTimes.pollFirst();
            Applied a = documents.get(e.getValue());
            // An entry whose document was touched since is not its latest.
            if (a != null && a.touched.equals(e.getKey())) {
                documents.remove(e.getValue());
            }
        }
    }
}
