package com.popbillbridge.events;

import java.time.Instant;
import java.util.Optional;

/** A decoded delivery record: its envelope and its typed event. */
public record Delivery(Envelope envelope, Event event) {
    /** {@code ce_id}: what to deduplicate on. */
    public String id() {
        return envelope.cloudEvent().id();
    }

    /** The document ({@code corpNum} + {@code itemKey}), when known. */
    public Optional<Event.DocumentKey> document() {
        return event.document();
    }

    /**
     * When the bridge received the delivery: the record timestamp, else the received-at header,
     * else {@code ce_time}. The gate's window runs on it.
     */
    public Optional<Instant> received() {
        Envelope e = envelope;
        return Optional.ofNullable(e.timestamp() != null ? e.timestamp()
                : e.receivedAt() != null ? e.receivedAt() : e.cloudEvent().time());
    }
}
