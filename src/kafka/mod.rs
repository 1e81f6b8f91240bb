//! Kafka: the producer and its records, the topics, and the in-process
//! mock cluster of `--dev`.
//!
//! - [`publish`]: the idempotent `acks=all` producer and the wait for the
//!   delivery report;
//! - [`record`]: the record a delivery becomes (key, headers, CloudEvents);
//! - [`topics`]: topics exist, are created when missing, and have settings
//!   that keep the bridge's promise;
//! - [`mock`]: librdkafka's mock cluster for `--dev`.

pub mod mock;
pub mod publish;
pub mod record;
pub mod topics;
