//! `rdkafka` messages as [`RawRecord`]s, and a consumer's settings
//! (feature `rdkafka`).
//!
//! ```no_run
//! # fn handle(msg: &rdkafka::message::BorrowedMessage<'_>) {
//! use popbill_events::RawRecord;
//! let delivery = RawRecord::from(msg).decode();
//! # }
//! ```

use rdkafka::config::ClientConfig;
use rdkafka::message::{BorrowedMessage, Headers, Message, OwnedMessage};

use crate::{CONSUMER_PROPERTIES, RawRecord};

/// Sets [`CONSUMER_PROPERTIES`] (`isolation.level=read_committed`) on a
/// consumer's configuration, over whatever it held: only records of
/// committed transactions are read, so an event popbill-bridge published
/// is read once, not again for each aborted attempt.
///
/// ```no_run
/// use rdkafka::config::ClientConfig;
/// use rdkafka::consumer::BaseConsumer;
///
/// let mut config = ClientConfig::new();
/// config
///     .set("bootstrap.servers", "kafka-0:9092")
///     .set("group.id", "invoices")
///     .set("enable.auto.commit", "false");
/// let consumer: BaseConsumer = popbill_events::configure_consumer(&mut config).create()?;
/// # Ok::<(), rdkafka::error::KafkaError>(())
/// ```
pub fn configure_consumer(config: &mut ClientConfig) -> &mut ClientConfig {
    for (name, value) in CONSUMER_PROPERTIES {
        config.set(*name, *value);
    }
    config
}

impl<'a> RawRecord<'a> {
    /// Any rdkafka message: key, payload, headers and timestamp, borrowed.
    pub fn from_message<M: Message>(m: &'a M) -> RawRecord<'a>
    where
        M::Headers: 'a,
    {
        RawRecord {
            key: m.key(),
            value: m.payload(),
            headers: m
                .headers()
                .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
                .unwrap_or_default(),
            timestamp_millis: m.timestamp().to_millis(),
        }
    }
}

impl<'a, 'm> From<&'a BorrowedMessage<'m>> for RawRecord<'a> {
    fn from(m: &'a BorrowedMessage<'m>) -> RawRecord<'a> {
        RawRecord::from_message(m)
    }
}

impl<'a> From<&'a OwnedMessage> for RawRecord<'a> {
    fn from(m: &'a OwnedMessage) -> RawRecord<'a> {
        RawRecord::from_message(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Timestamp;
    use rdkafka::message::{Header, OwnedHeaders};

    #[test]
    fn the_consumer_reads_committed_whatever_it_was_given() {
        let mut c = ClientConfig::new();
        c.set("isolation.level", "read_uncommitted")
            .set("group.id", "g");
        configure_consumer(&mut c);
        assert_eq!(c.get("isolation.level"), Some("read_committed"));
        assert_eq!(c.get("group.id"), Some("g"));
    }

    #[test]
    fn an_owned_message_converts() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "ce_id",
                value: Some("mid-1"),
            })
            .insert(Header {
                key: "pb-webhook-type",
                value: Some("KAKAO.STATE"),
            })
            .insert(Header::<&str> {
                key: "empty",
                value: None,
            });
        let m = OwnedMessage::new(
            Some(br#"{"receiptNum":"R1","eventType":"RESULT"}"#.to_vec()),
            Some(b"mid-1".to_vec()),
            "popbill.kakao.state.result".into(),
            Timestamp::CreateTime(1_763_080_211_000),
            0,
            42,
            Some(headers),
        );
        let d = RawRecord::from(&m).decode().expect("a delivery");
        assert_eq!(d.id(), "mid-1");
        assert_eq!(d.envelope.key.as_deref(), Some("mid-1"));
        assert_eq!(
            d.envelope.timestamp.map(|t| t.as_millisecond()),
            Some(1_763_080_211_000)
        );
        assert_eq!(d.envelope.other_headers, [("empty".to_owned(), None)]);
        assert!(matches!(d.event, crate::Event::Kakao(_)));
    }
}
