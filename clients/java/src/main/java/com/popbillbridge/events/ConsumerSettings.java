package com.popbillbridge.events;

import java.util.Map;
import java.util.Properties;

/**
 * The consumer settings every reader of popbill-bridge's topics needs. The bridge writes each
 * record in a Kafka transaction; the Java client's default {@code isolation.level} is
 * {@code read_uncommitted}, which also returns the records of transactions the bridge aborted
 * (their deliveries were answered 503 and sent again: duplicates).
 */
public final class ConsumerSettings {
    private ConsumerSettings() {}

    /** {@code isolation.level=read_committed}. */
    public static final Map<String, String> PROPERTIES = Map.of("isolation.level", "read_committed");

    /** Sets {@link #PROPERTIES} over whatever {@code props} held. */
    public static Properties apply(Properties props) {
        props.putAll(PROPERTIES);
        return props;
    }

    /** Sets {@link #PROPERTIES} over whatever {@code config} held. */
    public static <M extends Map<String, Object>> M apply(M config) {
        config.putAll(PROPERTIES);
        return config;
    }
}
