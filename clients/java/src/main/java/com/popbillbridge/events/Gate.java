package com.popbillbridge.events;

import java.time.Instant;
import java.time.LocalDateTime;
import java.util.Optional;

/**
 * An at-least-once consumer's two checks (crates/popbill-events/src/gate.rs): have I handled this
 * event already (by {@code ce_id}), and is it older than what I applied to its document (by
 * {@code stateDT})? Kafka consumers that commit after handling see a record again after a crash
 * or a rebalance; POPBiLL may deliver an event again and promises no order between one document's
 * events (a retried {@code Issue} can come after the {@code NTS}).
 *
 * <p>An event whose {@code stateDT} is older than the newest applied to its document is stale; an
 * equal one is not (an {@code OPEN} carries the {@code stateDT} of the state it was opened in).
 * Events without a document or a valid {@code stateDT} are never stale. The comparison is on the
 * Korean wall clock, which orders as the instants do (one offset).
 */
public final class Gate {
    private final GateStore store;

    /** A gate over an {@link InMemoryGateStore} (48 hours, a million entries). */
    public Gate() {
        this(new InMemoryGateStore());
    }

    /** A gate over {@code store}. */
    public Gate(GateStore store) {
        this.store = store;
    }

    /** What to do with {@code d}, remembering nothing. */
    public Verdict check(Delivery d) {
        if (store.seen(d.id())) {
            return Verdict.DUPLICATE;
        }
        Optional<Event.DocumentKey> doc = d.document();
        Optional<LocalDateTime> state = stateDt(d);
        if (doc.isPresent() && state.isPresent()) {
            Optional<LocalDateTime> applied = store.appliedState(doc.get());
            if (applied.isPresent() && state.get().isBefore(applied.get())) {
                return new Verdict.Stale(applied.get());
            }
        }
        return Verdict.APPLY;
    }

    /**
     * Remembers {@code d} as handled. Call it after handling (or skipping) a delivery, before
     * committing its offset.
     */
    public void record(Delivery d) {
        Optional<Event.DocumentKey> doc = d.document();
        Optional<LocalDateTime> state = stateDt(d);
        boolean ordered = doc.isPresent() && state.isPresent();
        store.remember(d.id(), ordered ? doc.get() : null, ordered ? state.get() : null,
                d.received().orElseGet(Instant::now));
    }

    /** {@link #check}, then {@link #record} unless a duplicate. */
    public Verdict admit(Delivery d) {
        Verdict v = check(d);
        if (!(v instanceof Verdict.Duplicate)) {
            record(d);
        }
        return v;
    }

    private static Optional<LocalDateTime> stateDt(Delivery d) {
        PbDateTime t = d.event().stateDt();
        return t == null ? Optional.empty() : t.localDateTime();
    }
}
