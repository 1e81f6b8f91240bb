package com.popbillbridge.events;

import java.time.LocalDateTime;

/** What to do with a delivery. */
public sealed interface Verdict {
    /** New, and not older than its document's state: handle it. */
    Verdict APPLY = new Apply();
    /** Its {@code ce_id} was handled already: skip it. */
    Verdict DUPLICATE = new Duplicate();

    /** See {@link #APPLY}. */
    record Apply() implements Verdict {}

    /** See {@link #DUPLICATE}. */
    record Duplicate() implements Verdict {}

    /** Older than the state applied to its document ({@code applied}, KST wall clock): skip or flag it. */
    record Stale(LocalDateTime applied) implements Verdict {}
}
