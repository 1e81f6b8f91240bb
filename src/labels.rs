//! Every bounded label value the bridge exports, each enum written once:
//! The `labels!` macro below derives `ALL` (in declaration order, which the metrics use
//! as indexes) and `as_str` from one list, so a variant can never be
//! missing from either.

/// Declares a label enum: `Variant => "label"` pairs.
macro_rules! labels {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident => $label:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order (`value as usize` indexes it).
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

labels! {
    /// How a delivery ended; the `outcome` label.
    pub enum Outcome {
        /// In Kafka, confirmed, answered `OK`.
        Acknowledged => "acknowledged",
        /// Kafka did not confirm; answered 503 so POPBiLL retries.
        Failed => "failed",
        /// Already published before; answered `OK` without a second record.
        Duplicate => "duplicate",
        /// The request itself was wrong (or shed); not published.
        Rejected => "rejected",
    }
}

labels! {
    /// Why a request was refused; `popbill_bridge_rejections_total{reason}`.
    pub enum RejectReason {
        NotFound => "not_found",
        MethodNotAllowed => "method_not_allowed",
        BodyTooLarge => "body_too_large",
        BodyTimeout => "body_timeout",
        BodyRead => "body_read",
        MissingHeader => "missing_header",
        BadHeader => "bad_header",
        EmptyBody => "empty_body",
        NotUtf8 => "not_utf8",
        NotJson => "not_json",
        NotObject => "not_object",
        TooDeep => "too_deep",
        Unauthorized => "unauthorized",
        Forbidden => "forbidden",
        Overloaded => "overloaded",
    }
}

impl RejectReason {
    /// Whether a delivery refused for this reason is kept in the
    /// dead-letter topic (when the sender is verified): the bytes are there
    /// but will never parse. Empty, oversized and over-deep bodies are not
    /// kept: nothing to keep, too big, or hostile.
    pub fn dead_letters(self) -> bool {
        matches!(
            self,
            Self::MissingHeader | Self::BadHeader | Self::NotUtf8 | Self::NotJson | Self::NotObject
        )
    }
}

labels! {
    /// Why Kafka did not confirm; `popbill_bridge_publish_failures_total{reason}`.
    pub enum FailReason {
        TopicMissing => "topic_missing",
        TopicNotCreatable => "topic_not_creatable",
        /// The topic exists but a partition's leader does not answer yet.
        TopicNotServing => "topic_not_serving",
        KafkaUnavailable => "kafka_unavailable",
        Timeout => "timeout",
        QueueFull => "queue_full",
        KafkaError => "kafka_error",
        /// The authorizer denies Write on the topic.
        WriteDenied => "write_denied",
        RecordTooLarge => "record_too_large",
        /// A report that said "delivered" without an offset.
        Unconfirmed => "unconfirmed",
        ShuttingDown => "shutting_down",
        Abandoned => "abandoned",
        ProducerFatal => "producer_fatal",
        /// No transactional writer has been initialised yet.
        TransactionsNotReady => "transactions_not_ready",
        /// The delivery's transaction was aborted: its record is not
        /// visible to read_committed consumers.
        TransactionAborted => "transaction_aborted",
        /// The commit's outcome was not settled by the deadline.
        TransactionUnsettled => "transaction_unsettled",
        /// The deadline passed while the delivery's commit was in
        /// progress: the write may yet appear.
        CommitPending => "commit_pending",
    }
}

labels! {
    /// How a transaction of the group commit ended;
    /// `popbill_bridge_transactions_total{outcome}`.
    pub enum TransactionOutcome {
        Committed => "committed",
        Aborted => "aborted",
        /// The commit failed without saying whether it happened, and
        /// reading back did not settle it in time.
        Unsettled => "unsettled",
    }
}

labels! {
    /// Which writer got a delivery report it could not trust;
    /// `popbill_bridge_kafka_unconfirmed_reports_total{writer}`.
    pub enum RecordWriter {
        /// A delivery's record (the webhook, and `redrive`).
        Delivery => "delivery",
        /// A batch of the duplicates ledger.
        Ledger => "ledger",
    }
}

labels! {
    /// What ended a connection before the handler saw a request;
    /// `popbill_bridge_http_errors_total{kind}`.
    pub enum HttpErrorKind {
        HeadersTooLarge => "headers_too_large",
        BadRequest => "bad_request",
        HeaderTimeout => "header_timeout",
        Canceled => "canceled",
        Io => "io",
        /// Closed at accept: the source is not on `access.allow`.
        ForbiddenAtAccept => "forbidden_at_accept",
    }
}

#[cfg(test)]
mod tests;
