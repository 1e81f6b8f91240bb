package com.popbillbridge.example;

import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.util.backoff.ExponentialBackOff;

/** The dead-letter policy; the consumer settings are in application.yml. */
@Configuration
public class KafkaConfig {
    /**
     * Undecodable records go to {@code <topic>.DLT} at once (same partition) and are committed
     * past; any other failure of handle() is retried with back-off for up to a minute, then sent
     * there too, so one bad record never stops its partition for good. Spring Boot wires this
     * bean into its listener container factory.
     */
    @Bean
    public CommonErrorHandler errorHandler(KafkaTemplate<byte[], byte[]> template) {
        ExponentialBackOff backOff = new ExponentialBackOff(500, 2.0);
        backOff.setMaxElapsedTime(60_000);
        DefaultErrorHandler handler = new DefaultErrorHandler(new DeadLetterPublishingRecoverer(template), backOff);
        handler.addNotRetryableExceptions(InvoiceListener.UndecodableRecord.class);
        return handler;
    }
}
