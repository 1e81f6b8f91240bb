package com.popbillbridge.events;

/** Why a record is not a delivery event. */
public abstract sealed class DecodeException extends Exception
        permits DecodeException.NotADelivery, DecodeException.Body {
    private static final long serialVersionUID = 1L;

    DecodeException(String message) {
        super(message);
    }

    /** No {@code ce_id} (nor {@code pb-webhook-mid}): the ledger topic, or another producer. */
    public static final class NotADelivery extends DecodeException {
        private static final long serialVersionUID = 1L;

        NotADelivery() {
            super("not a popbill-bridge delivery record (no ce_id header)");
        }
    }

    /**
     * A delivery whose value is not a JSON object (the dead-letter topic). {@link #kind}: missing,
     * empty, not_utf8 (with {@link #validUpTo}), not_json, not_object, too_deep.
     */
    public static final class Body extends DecodeException {
        private static final long serialVersionUID = 1L;
        /** What the headers say (not serialized with the exception). */
        public final transient Envelope envelope;
        /** The kind of error, as in the Rust crate's BodyError. */
        public final String kind;
        /** For not_utf8: the bytes before the first invalid one; else -1. */
        public final int validUpTo;

        Body(Envelope envelope, String kind, int validUpTo, String detail) {
            super("delivery " + envelope.cloudEvent().id() + ": " + kind + (detail == null ? "" : ": " + detail));
            this.envelope = envelope;
            this.kind = kind;
            this.validUpTo = validUpTo;
        }
    }
}
