package com.popbillbridge.events;

import java.time.Instant;
import java.time.LocalDateTime;
import java.util.Optional;

/**
 * Where a {@link Gate} keeps what it remembers. {@link InMemoryGateStore} is the Rust gate's
 * memory (a window of record time, a count). A service that must survive restarts implements this
 * over its own database and writes it in the same transaction as its own state, so that "handled"
 * and "remembered" cannot part: a table of handled ids (primary key {@code ce_id}) and one of
 * documents ({@code corp_num, item_key} → the newest {@code stateDT}, updated with
 * {@code GREATEST}).
 */
public interface GateStore {
    /** Whether this {@code ce_id} was handled. */
    boolean seen(String id);

    /** The newest {@code stateDT} (Korean wall-clock) applied to the document, if remembered. */
    Optional<LocalDateTime> appliedState(Event.DocumentKey document);

    /**
     * Records {@code id} as handled and, when both are given, {@code stateDt} as the document's
     * state if newer. {@code at} is the record time (for expiry).
     */
    void remember(String id, Event.DocumentKey document, LocalDateTime stateDt, Instant at);
}
