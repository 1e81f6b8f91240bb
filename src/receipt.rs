//! What a delivery report proves.
//!
//! A report that says "delivered" is not proof on its own. librdkafka's
//! idempotent producer can acknowledge a message *implicitly*: when a later
//! batch on the same partition succeeds, it takes every earlier message as
//! stored too ("IMPLICITACK … implicitly acked by subsequent batch
//! success"), and reports it delivered with no error and offset -1001, even
//! when that very message had just failed "not persisted". On a partition
//! that has just come into existence the broker accepts a producer's first
//! batch at any sequence, so the earlier message is in fact lost
//! (confluent-kafka-go #921; librdkafka #4134 is similar; both open).
//!
//! With `acks=all` a record Kafka stored always comes back with its offset.
//! So a [`Receipt`], the only thing that lets the bridge answer `OK`,
//! remember an event as published or write a ledger line, can only be made
//! from a report that carries one. Anything else is [`Unconfirmed`]: the
//! delivery is answered 503 and POPBiLL's retry publishes it again (at worst
//! a duplicate, never a loss).

/// Where Kafka put a record: proof of the write. Made only by
/// [`Receipt::from_report`], so every `Receipt` carries a real offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    partition: i32,
    offset: i64,
}

/// A report that said "delivered" without an offset: nothing proves the
/// record is in Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unconfirmed {
    pub partition: i32,
    pub offset: i64,
}

impl Receipt {
    /// The receipt of a successful report, or [`Unconfirmed`] when the
    /// report gives no offset (librdkafka's `RD_KAFKA_OFFSET_INVALID`,
    /// -1001, or any other negative value) or no partition.
    pub(crate) fn from_report(partition: i32, offset: i64) -> Result<Receipt, Unconfirmed> {
        if partition < 0 || offset < 0 {
            return Err(Unconfirmed { partition, offset });
        }
        Ok(Receipt { partition, offset })
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn offset(&self) -> i64 {
        self.offset
    }
}

impl std::fmt::Display for Unconfirmed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Kafka's report said delivered without an offset (partition {}, offset {}): nothing proves the write",
            self.partition, self.offset
        )
    }
}

#[cfg(test)]
mod tests;
