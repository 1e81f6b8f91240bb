//! Typed POPBiLL webhook events, read from the Kafka records that
//! popbill-bridge writes.
//!
//! # The record format
//!
//! popbill-bridge publishes one Kafka record per POPBiLL webhook delivery.
//! The bridge's documentation describes it in full: `README.md` at the root
//! of its repository, sections *The Kafka record* and *Duplicates*
//! (relative to this crate: `../../README.md#the-kafka-record`). In short:
//!
//! - **value**: the webhook body exactly as POPBiLL sent it (a JSON object);
//! - **key**: `corpNum:itemKey` when both are known, else the event id;
//! - **timestamp**: when the bridge received the request;
//! - **headers**: POPBiLL's own (`pb-webhook-type`, `pb-webhook-mid`,
//!   `pb-webhook-corpnum`, `pb-webhook-eventtype`, `content-type`, custom
//!   ones), `popbill-bridge-received-at`, and the CloudEvents binary-mode
//!   attributes `ce_specversion`, `ce_id` (the MID), `ce_source`,
//!   `ce_type`, `ce_time` (the body's `eventDT`) and `ce_subject` (the
//!   `itemKey`). Dead letters add `popbill-bridge-rejection-reason`.
//!
//! # Reading the topics: `read_committed`
//!
//! popbill-bridge writes each record in a Kafka transaction and answers
//! POPBiLL `OK` only once it committed; a delivery whose transaction
//! aborted is answered 503 and sent again. A consumer must therefore set
//! `isolation.level=read_committed` ([`CONSUMER_PROPERTIES`]): it then sees
//! exactly one record per event (within the limits in the bridge's
//! `docs/duplicates.md`), where a `read_uncommitted` consumer also sees the
//! records of aborted transactions — duplicates. librdkafka (and so
//! rust-rdkafka, confluent-kafka-python, confluent-kafka-go) reads
//! committed by default; the Java client does not. With the `rdkafka`
//! feature, `configure_consumer` sets it on a `ClientConfig`.
//!
//! # What this crate does
//!
//! | step | type |
//! |---|---|
//! | a record, as any Kafka client gives it | [`RawRecord`] (`RawRecord::from(&msg)` with the `rdkafka` feature) |
//! | its headers, key and timestamps | [`Envelope`], [`CloudEvent`] |
//! | its body, typed by product | [`Event`]: [`TaxInvoiceEvent`], [`StatementEvent`], [`CashReceiptEvent`], [`HometaxTaxInvoiceEvent`], [`HometaxCashReceiptEvent`], [`KakaoEvent`], [`UnknownEvent`] |
//! | Korean-time dates (`yyyyMMddHHmmss`, `yyyyMMdd`) | [`PbDateTime`], [`PbDate`], module [`time`] |
//! | duplicates and per-document order | [`Gate`], [`Verdict`] |
//! | one text per decoded record, the same in Rust, Java and Python | [`canonical_json`] |
//!
//! It is tolerant where POPBiLL varies: `stateCode` as a number or a
//! string, `ntsConfirmNum` or `ntsconfirmNum`, fields absent, empty or
//! null, undocumented fields (kept in each event's `extra`), unknown
//! webhook types ([`Event::Unknown`], with the raw JSON). Invalid dates are
//! values with an error, never a panic. Only a value that is not a JSON
//! object (the bridge's dead-letter topic) or a record without `ce_id` (its
//! ledger topic) is an error: [`DecodeError`].
//!
//! # Example
//!
//! ```
//! use popbill_events::{Event, Gate, RawRecord, Verdict};
//! use std::time::Duration;
//!
//! let body = br#"{"corpNum":"6798700433","itemKey":"025111411000000321","stateCode":"300",
//!     "stateDT":"20251114110001","eventDT":"20251114110002","eventType":"Issue"}"#;
//! let record = RawRecord::new(body)
//!     .with_key(b"6798700433:025111411000000321")
//!     .with_header("pb-webhook-type", b"STATEMENT.STATE")
//!     .with_header("pb-webhook-eventtype", b"Issue")
//!     .with_header("ce_id", b"025111411000-3344556677889900aabb008");
//!
//! let mut gate = Gate::new(Duration::from_secs(48 * 3600));
//! let delivery = record.decode()?;
//! if gate.admit(&delivery) == Verdict::Apply {
//!     if let Event::Statement(s) = &delivery.event {
//!         assert_eq!(s.state_code, Some(300)); // sent as a string
//!         let when = s.state_dt.as_ref().map(|t| t.zoned()).transpose()?;
//!         assert_eq!(when.map(|z| z.to_string()).as_deref(),
//!                    Some("2025-11-14T11:00:01+09:00[+09:00]"));
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `rdkafka`: `From<&BorrowedMessage>` and `From<&OwnedMessage>` for
//!   [`RawRecord`], and `configure_consumer`. Without it the crate does
//!   not depend on any Kafka client.
//!
//! # Modules
//!
//! - `event`: [`Event`] and the typed events, [`WebhookType`],
//!   [`EventType`];
//! - `record`: [`RawRecord`], [`Envelope`], [`Delivery`], [`DecodeError`];
//! - [`time`]: Korean-time dates;
//! - `gate`: [`Gate`];
//! - `canonical`: [`canonical_json`], the form `tests/vectors/` holds;
//! - `fields` (private): tolerant field reading.

#![warn(missing_docs)]

mod canonical;
mod event;
mod fields;
mod gate;
#[cfg(feature = "rdkafka")]
mod kafka;
mod record;
pub mod time;

pub use canonical::canonical_json;
pub use event::{
    BodyError, CashReceiptEvent, DocumentKey, Event, EventType, HometaxCashReceiptEvent,
    HometaxTaxInvoiceEvent, KakaoEvent, StatementEvent, TaxInvoiceEvent, TaxInvoiceState,
    UnknownEvent, WebhookType,
};
pub use gate::{Gate, GateStore, MemoryStore, Verdict};
pub use record::{
    CloudEvent, DecodeError, Delivery, Envelope, RECEIVED_AT, REJECTION_REASON, RawRecord,
};
pub use time::{DateError, PbDate, PbDateTime};

#[cfg(feature = "rdkafka")]
pub use kafka::configure_consumer;

/// The consumer settings every reader of popbill-bridge's topics needs,
/// whatever its client (the names are the Java client's, which librdkafka
/// shares): `isolation.level=read_committed`, so that only records of
/// committed transactions are read. The Java client's default is
/// `read_uncommitted`, which also returns the records of transactions the
/// bridge aborted (their deliveries were answered 503 and sent again:
/// duplicates); librdkafka's default is `read_committed`, set it anyway so
/// that no copied configuration loses it.
///
/// ```
/// let isolation = popbill_events::CONSUMER_PROPERTIES
///     .iter()
///     .find(|(k, _)| *k == "isolation.level");
/// assert_eq!(isolation, Some(&("isolation.level", "read_committed")));
/// ```
pub const CONSUMER_PROPERTIES: &[(&str, &str)] = &[("isolation.level", "read_committed")];

/// The date library used in this API ([`jiff::Timestamp`] and friends).
pub use jiff;
/// The JSON values in `extra` and [`UnknownEvent::body`].
pub use serde_json;
