//! The document's prose: what it tells consumers about the record, the
//! delivery guarantee (which depends on `kafka.transactions.enabled`) and
//! the bodies.

/// The document's description; what it says about delivery and reading
/// depends on `kafka.transactions.enabled`.
pub(super) fn info(transactions: bool) -> String {
    let delivery = if transactions {
        DELIVERY_TRANSACTIONS
    } else {
        DELIVERY_AT_LEAST_ONCE
    };
    format!("{INFO_RECORD}{delivery}{INFO_BODIES}")
}

/// What the publish operations say, by `kafka.transactions.enabled`.
pub(super) fn publish_summary(transactions: bool) -> &'static str {
    if transactions {
        "popbill-bridge writes each delivery routed here in a Kafka transaction (acks=all), with its duplicates-ledger line, and answers POPBiLL OK once the transaction committed. Read with isolation.level=read_committed."
    } else {
        "popbill-bridge writes each delivery routed here once Kafka has it (acks=all, idempotent producer), then answers POPBiLL OK."
    }
}

const DELIVERY_TRANSACTIONS: &str = "**Reading: set `isolation.level=read_committed`.** \
Every record is written in a Kafka transaction, and POPBiLL is answered OK only once it \
committed; a delivery whose transaction aborted is answered 503 and sent again. A consumer \
reading `read_committed` sees exactly one record per event (limits: docs/duplicates.md); one \
reading `read_uncommitted` also sees the records of aborted transactions, as duplicates. The \
Java client's default is `read_uncommitted`: set `isolation.level=read_committed` (Kafka \
Streams and Connect: their consumer's `isolation.level`). librdkafka and the clients built on it \
(confluent-kafka, rust-rdkafka) read committed by default. Consumers should still deduplicate \
by `ce_id` (their own restarts re-read, and a manual re-run with a new MID is a new event). \
POPBiLL promises no order and retries minutes apart: order a document's events by the body's \
`stateDT` and treat its state as moving forward.\n\n";

const DELIVERY_AT_LEAST_ONCE: &str = "**Delivery.** At least once: a copy of an event already \
published is normally recognised and not written again, but consumers should still deduplicate \
by `ce_id`. POPBiLL promises no order and retries minutes apart: order a document's events by \
the body's `stateDT` and treat its state as moving forward.\n\n";

const INFO_RECORD: &str = "Kafka topics written by popbill-bridge, which receives POPBiLL webhook \
deliveries (e-tax invoices, statements, cash receipts, hometax crawls, KakaoTalk results) and \
publishes each to the topic its webhook and event type are routed to.\n\n\
**The record.** Value: the body exactly as POPBiLL sent it, byte for byte (JSON, UTF-8). \
Key: `corpNum:itemKey` when both are known, so one document's events share a partition and \
stay in order; otherwise the MID (`Pb-Webhook-MID`). Timestamp: when the bridge received the \
request. Headers: every header POPBiLL sent under its lower-case name (`pb-webhook-*`, \
`content-type`, any custom header; never credentials nor HTTP-hop headers), \
`popbill-bridge-received-at`, and the CloudEvents attributes in binary mode (Kafka protocol \
binding: `ce_specversion`, `ce_id`, `ce_source`, `ce_type`, `ce_time`, `ce_subject`).\n\n";

const INFO_BODIES: &str = "**Bodies.** Fields vary by product and POPBiLL adds fields without notice: every payload schema \
allows unknown properties. Optional fields may be absent, empty or null; `stateCode` is a number \
or a string depending on the product; dates are `yyyyMMddHHmmss` or `yyyyMMdd` in Korean time \
(UTC+9).";
