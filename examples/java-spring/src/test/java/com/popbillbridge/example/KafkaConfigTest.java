package com.popbillbridge.example;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.FailedRecordProcessor;

class KafkaConfigTest {
    /**
     * With ack-mode manual_immediate, Spring Kafka commits a record its error handler recovered
     * (published to the dead-letter topic) only when commitRecovered is set; otherwise the record
     * is read and dead-lettered again after every restart. The flag has no public getter.
     */
    @Test
    void deadLetteredRecordsAreCommitted() throws Exception {
        KafkaTemplate<byte[], byte[]> template =
                new KafkaTemplate<>(new DefaultKafkaProducerFactory<>(Map.of()));
        CommonErrorHandler handler = new KafkaConfig().errorHandler(template, "dead-letters");
        Method commitRecovered = FailedRecordProcessor.class.getDeclaredMethod("isCommitRecovered");
        commitRecovered.setAccessible(true);
        assertTrue((Boolean) commitRecovered.invoke(handler), "commitRecovered");
    }
}
