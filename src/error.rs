//! Everything that can stop a delivery short of `OK`, and the one place
//! where each kind becomes its HTTP answer (status, headers, short reason)
//! and its metric reason.
//!
//! Two families: *rejections* (the request itself is wrong: 4xx, POPBiLL
//! should not bother retrying the same bytes) and *failures* (Kafka could not
//! confirm the write in time: 503 with `Retry-After`, so POPBiLL sends the
//! delivery again and nothing is lost).

use hyper::StatusCode;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

pub use crate::labels::{FailReason, RejectReason};

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    // --- rejections: the request is at fault ---
    #[error("not found")]
    NotFound,
    #[error("method not allowed: use POST")]
    MethodNotAllowed,
    #[error("body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("body not received in time")]
    BodyTimeout,
    #[error("body could not be read")]
    BodyRead(#[source] hyper::Error),
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("{0} header is not valid UTF-8")]
    BadHeader(&'static str),
    #[error("empty body")]
    EmptyBody,
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("body is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("body is not a JSON object")]
    NotObject,
    #[error("body nests too deeply")]
    TooDeep,
    #[error("authentication required")]
    Unauthorized { basic: bool },
    #[error("source address {0} is not allowed")]
    Forbidden(std::net::IpAddr),
    #[error("too many deliveries in progress; retry later")]
    Overloaded,

    // --- failures: Kafka did not confirm; POPBiLL must retry ---
    #[error("topic {0} does not exist")]
    TopicMissing(String),
    /// Kafka's answer to its creation said only that it did not finish
    /// (a timeout, a busy controller, a quota): it may yet exist.
    #[error("topic {topic} does not exist yet: {cause}")]
    TopicCreationUnfinished { topic: String, cause: String },
    /// Kafka refused to create the topic; `cause` names the setting that
    /// fixes it.
    #[error("topic {topic} does not exist and cannot be created: {cause}")]
    TopicNotCreatable { topic: String, cause: String },
    /// The topic exists, but a partition's leader does not answer yet (a
    /// topic just created, or partitions just added): nothing is written
    /// to it until each does (see `kafka::topics::serving`).
    #[error("topic {topic} is not serving yet: {cause}")]
    TopicNotServing { topic: String, cause: String },
    #[error("Kafka is unavailable")]
    KafkaUnavailable,
    #[error("Kafka did not confirm the write in time")]
    PublishTimeout,
    #[error("producer queue is full")]
    QueueFull,
    #[error("Kafka refused the write")]
    Kafka(#[source] KafkaError),
    /// The cluster's authorizer denies the bridge's principal `Write` on
    /// the topic (`TopicAuthorizationFailed`). A 503: POPBiLL's retries
    /// succeed once the ACL is granted; `/readyz` lists the topic.
    #[error(
        "Kafka denies the bridge Write on topic {topic} (TopicAuthorizationFailed): grant its principal Write on topic {topic} (docs/deploy.md, ACLs); retry"
    )]
    WriteDenied { topic: String },
    /// The topic's record limit is below what the bridge accepts (the
    /// bridge's own topics are created large enough; `/readyz` names the
    /// others). A 503, not a 4xx: the delivery is valid and POPBiLL's
    /// retries succeed once the setting is raised.
    #[error(
        "record too large for topic {topic}: raise the topic's max.message.bytes (see /readyz)"
    )]
    RecordTooLarge { topic: String },
    /// Kafka's report said "delivered" without an offset: librdkafka's
    /// implicit acknowledgement, which can cover a record that was never
    /// stored (see [`crate::receipt`]). A 503, so POPBiLL retries:
    /// at worst a duplicate, never a loss.
    #[error("Kafka did not prove the write (a report without an offset); retry")]
    Unconfirmed {
        topic: String,
        /// Where the report said the record went: a partition, and no
        /// offset (librdkafka's -1001).
        partition: i32,
        offset: i64,
    },
    #[error("shutting down")]
    ShuttingDown,
    /// librdkafka raised a fatal error: this producer never writes again.
    /// The bridge exits so that it is restarted with a new one.
    #[error("the Kafka producer hit a fatal error; the bridge is restarting")]
    ProducerFatal,
    /// `kafka.transactions` is on and no transactional writer is ready;
    /// `why` is what readiness says (an ACL to grant, the transaction
    /// state log, ...), so the answer names it too.
    #[error("no Kafka transactional writer is ready yet{}; retry", why.as_deref().map(|w| format!(": {w}")).unwrap_or_default())]
    TransactionsNotReady { why: Option<String> },
    /// The delivery's transaction aborted: its record is not visible to
    /// read_committed consumers, so the retry is the one that counts.
    #[error("Kafka transaction aborted ({cause}); retry")]
    TransactionAborted { cause: String },
    /// The commit's outcome was not settled within the deadline. The
    /// settlement goes on: a commit it finds is remembered, so the retry
    /// is recognised as a duplicate.
    #[error("Kafka transaction outcome not settled in time ({cause}); retry")]
    TransactionUnsettled { cause: String },
    /// The request's deadline passed while its transaction's commit was
    /// in progress: the record may yet become visible. A 503 (the bridge
    /// cannot say `OK` for a commit it has not seen), with its own reason
    /// so that it is told apart from a write that cannot appear: once the
    /// commit lands, its ledger line makes the retry a duplicate; a retry
    /// that reaches another replica before that can be published again
    /// (docs/duplicates.md, "Limits").
    #[error("Kafka transaction still committing at the deadline; the write may yet appear; retry")]
    CommitPending,
    /// A copy waited for the first copy of its event, which was given up
    /// before reaching Kafka (its client hung up).
    #[error("first copy of this event was abandoned; retry")]
    Abandoned,
}

/// Which family an error belongs to, with its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rejected(RejectReason),
    Failed(FailReason),
}

impl BridgeError {
    pub fn kind(&self) -> Kind {
        use BridgeError as E;
        match self {
            E::NotFound => Kind::Rejected(RejectReason::NotFound),
            E::MethodNotAllowed => Kind::Rejected(RejectReason::MethodNotAllowed),
            E::BodyTooLarge { .. } => Kind::Rejected(RejectReason::BodyTooLarge),
            E::BodyTimeout => Kind::Rejected(RejectReason::BodyTimeout),
            E::BodyRead(_) => Kind::Rejected(RejectReason::BodyRead),
            E::MissingHeader(_) => Kind::Rejected(RejectReason::MissingHeader),
            E::BadHeader(_) => Kind::Rejected(RejectReason::BadHeader),
            E::EmptyBody => Kind::Rejected(RejectReason::EmptyBody),
            E::NotUtf8 => Kind::Rejected(RejectReason::NotUtf8),
            E::NotJson(_) => Kind::Rejected(RejectReason::NotJson),
            E::NotObject => Kind::Rejected(RejectReason::NotObject),
            E::TooDeep => Kind::Rejected(RejectReason::TooDeep),
            E::Unauthorized { .. } => Kind::Rejected(RejectReason::Unauthorized),
            E::Forbidden(_) => Kind::Rejected(RejectReason::Forbidden),
            E::Overloaded => Kind::Rejected(RejectReason::Overloaded),
            E::TopicMissing(_) | E::TopicCreationUnfinished { .. } => {
                Kind::Failed(FailReason::TopicMissing)
            }
            E::TopicNotCreatable { .. } => Kind::Failed(FailReason::TopicNotCreatable),
            E::TopicNotServing { .. } => Kind::Failed(FailReason::TopicNotServing),
            E::KafkaUnavailable => Kind::Failed(FailReason::KafkaUnavailable),
            E::PublishTimeout => Kind::Failed(FailReason::Timeout),
            E::QueueFull => Kind::Failed(FailReason::QueueFull),
            E::Kafka(_) => Kind::Failed(FailReason::KafkaError),
            E::WriteDenied { .. } => Kind::Failed(FailReason::WriteDenied),
            E::RecordTooLarge { .. } => Kind::Failed(FailReason::RecordTooLarge),
            E::Unconfirmed { .. } => Kind::Failed(FailReason::Unconfirmed),
            E::ShuttingDown => Kind::Failed(FailReason::ShuttingDown),
            E::Abandoned => Kind::Failed(FailReason::Abandoned),
            E::ProducerFatal => Kind::Failed(FailReason::ProducerFatal),
            E::TransactionsNotReady { .. } => Kind::Failed(FailReason::TransactionsNotReady),
            E::TransactionAborted { .. } => Kind::Failed(FailReason::TransactionAborted),
            E::TransactionUnsettled { .. } => Kind::Failed(FailReason::TransactionUnsettled),
            E::CommitPending => Kind::Failed(FailReason::CommitPending),
        }
    }

    /// The HTTP status for each error, decided by its [`Kind`]: every
    /// failure is a 503 so that POPBiLL retries (a 200 never hides one); a
    /// rejection's status follows from its reason.
    pub fn status(&self) -> StatusCode {
        use RejectReason as R;
        match self.kind() {
            Kind::Failed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Rejected(reason) => match reason {
                R::NotFound => StatusCode::NOT_FOUND,
                R::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
                R::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                R::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
                R::Unauthorized => StatusCode::UNAUTHORIZED,
                R::Forbidden => StatusCode::FORBIDDEN,
                R::BodyRead
                | R::MissingHeader
                | R::BadHeader
                | R::EmptyBody
                | R::NotUtf8
                | R::NotJson
                | R::NotObject
                | R::TooDeep => StatusCode::BAD_REQUEST,
                // Shedding load: POPBiLL retries, so nothing is lost.
                R::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    /// The rejection reason, for rejections.
    pub(crate) fn reject_reason(&self) -> Option<RejectReason> {
        match self.kind() {
            Kind::Rejected(r) => Some(r),
            Kind::Failed(_) => None,
        }
    }

    /// Whether a delivery refused with this error is kept in the
    /// dead-letter topic (see [`RejectReason::dead_letters`]).
    pub fn dead_letters(&self) -> bool {
        self.reject_reason().is_some_and(RejectReason::dead_letters)
    }

    /// Turns a producer error into the bridge's terms. Only a delivery report
    /// that says the write succeeded ever becomes `OK`.
    pub(crate) fn from_kafka(e: KafkaError, topic: &str) -> BridgeError {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::QueueFull) => BridgeError::QueueFull,
            Some(RDKafkaErrorCode::MessageTimedOut) => BridgeError::PublishTimeout,
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                BridgeError::TopicMissing(topic.to_string())
            }
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure) => {
                BridgeError::KafkaUnavailable
            }
            Some(RDKafkaErrorCode::Fatal) => BridgeError::ProducerFatal,
            Some(RDKafkaErrorCode::TopicAuthorizationFailed) => BridgeError::WriteDenied {
                topic: topic.to_string(),
            },
            // Local (librdkafka's message.max.bytes) or the broker's
            // (the topic's max.message.bytes): same code, same fix.
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge,
            ) => BridgeError::RecordTooLarge {
                topic: topic.to_string(),
            },
            _ => BridgeError::Kafka(e),
        }
    }
}

#[cfg(test)]
mod tests;
