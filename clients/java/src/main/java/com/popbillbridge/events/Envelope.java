package com.popbillbridge.events;

import java.time.Instant;
import java.util.List;

/**
 * Everything about a record but its value: the CloudEvents attributes, POPBiLL's headers, the
 * key, the bridge's receive time and the record timestamp (both instants), the dead-letter
 * reason, and every other header in order (custom POPBiLL headers such as pb-custom-tenant).
 */
public record Envelope(CloudEvent cloudEvent, String webhookType, String mid, String corpNum, String eventType,
        String contentType, String key, Instant receivedAt, Instant timestamp, String rejectionReason,
        List<RawRecord.RawHeader> otherHeaders) {

    /**
     * The CloudEvents attributes (binary mode, Kafka binding). {@code id} is the MID, or a digest
     * ({@code content:<hex>}, {@code sha256:<hex>}) without one: the deduplication key.
     */
    public record CloudEvent(String id, String specVersion, String source, String type, Instant time,
            String subject) {}
}
