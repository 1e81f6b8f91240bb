package com.popbillbridge.example;

import org.apache.kafka.common.TopicPartition;
import org.springframework.beans.factory.annotation.Value;
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
     * Undecodable records go to the service's dead-letter topic ({@code popbill.dead-letter-topic},
     * which must exist: like the bridge, do not rely on the broker creating topics) at once, with
     * their key, value and headers and Spring's {@code kafka_dlt-*} headers saying where they came
     * from and why; any other failure of handle() is retried with back-off for up to a minute,
     * then sent there too, so one bad record never stops its partition for good. A record sent
     * there is committed at once ({@code setCommitRecovered(true)}: with ack-mode
     * manual_immediate, Spring Kafka commits a record its error handler recovered only when asked
     * to; without it the dead-lettered record's offset stays uncommitted, and after a restart or
     * rebalance it is read and dead-lettered again). Spring Boot wires this bean into its
     * listener container factory.
     */
    @Bean
    public CommonErrorHandler errorHandler(KafkaTemplate<byte[], byte[]> template,
            @Value("${popbill.dead-letter-topic}") String deadLetterTopic) {
        ExponentialBackOff backOff = new ExponentialBackOff(500, 2.0);
        backOff.setMaxElapsedTime(60_000);
        // Partition -1: the producer's choice by key (the default resolver would ask for the
        // source partition, which a topic of another size may not have).
        DeadLetterPublishingRecoverer recoverer = new DeadLetterPublishingRecoverer(template,
                (record, e) -> new TopicPartition(deadLetterTopic, -1));
        DefaultErrorHandler handler = new DefaultErrorHandler(recoverer, backOff);
        handler.addNotRetryableExceptions(InvoiceListener.UndecodableRecord.class);
        // Commit the offset of a record once it is dead-lettered (only MANUAL_IMMEDIATE honours
        // it, which application.yml sets).
        handler.setCommitRecovered(true);
        return handler;
    }
}
