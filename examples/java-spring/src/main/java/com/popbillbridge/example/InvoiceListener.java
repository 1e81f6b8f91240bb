package com.popbillbridge.example;

import com.popbillbridge.events.DecodeException;
import com.popbillbridge.events.Delivery;
import com.popbillbridge.events.Event;
import com.popbillbridge.events.Gate;
import com.popbillbridge.events.RecordDecoder;
import com.popbillbridge.events.Verdict;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.support.Acknowledgment;
import org.springframework.stereotype.Component;

/**
 * Reads popbill-bridge's topics (read_committed, see application.yml), decodes each record, lets
 * the gate drop copies and stale states, handles the rest, and acknowledges only after handling:
 * a crash before the acknowledgement means the record comes again, and the gate makes that
 * harmless.
 */
@Component
public class InvoiceListener {
    private static final Logger log = LoggerFactory.getLogger(InvoiceListener.class);

    /**
     * In memory, per listener thread (concurrency 1 in application.yml). A service that must
     * survive restarts gives the Gate a GateStore over its own database, written in the same
     * transaction as what handle() changes.
     */
    private final Gate gate = new Gate();

    @KafkaListener(topicPattern = "${popbill.topics}", groupId = "${popbill.group}")
    public void onRecord(ConsumerRecord<byte[], byte[]> record, Acknowledgment ack) throws UndecodableRecord {
        Delivery delivery;
        try {
            delivery = RecordDecoder.decode(record);
        } catch (DecodeException.NotADelivery notOurs) {
            // The bridge's ledger topic, or another producer: nothing to do.
            ack.acknowledge();
            return;
        } catch (DecodeException e) {
            // A dead letter (not JSON, not an object): retrying cannot help. The error handler
            // (KafkaConfig) publishes it to the service's dead-letter topic for a person,
            // then commits past it.
            throw new UndecodableRecord(e);
        }
        Verdict verdict = gate.check(delivery);
        if (verdict == Verdict.APPLY) {
            handle(delivery);
        } else {
            log.info("skipped {} ({})", delivery.id(), verdict);
        }
        if (verdict != Verdict.DUPLICATE) {
            gate.record(delivery);
        }
        ack.acknowledge();
    }

    private void handle(Delivery delivery) {
        if (delivery.event() instanceof Event.TaxInvoice e) {
            log.info("tax invoice {} state {} at {}", e.document().orElse(null), e.stateCode(),
                    e.stateDt() == null ? null : e.stateDt().zoned().orElse(null));
        } else if (delivery.event() instanceof Event.Unknown u) {
            log.info("{} event {}: {}", u.webhookType(), delivery.id(), u.body());
        }
    }

    /** A record the library cannot decode: sent to the dead-letter topic, never retried. */
    public static final class UndecodableRecord extends Exception {
        private static final long serialVersionUID = 1L;

        UndecodableRecord(DecodeException cause) {
            super(cause.getMessage(), cause);
        }
    }
}
