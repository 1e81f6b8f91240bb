use super::*;

#[test]
fn every_failure_is_503_and_every_rejection_is_4xx() {
    let errs = [
        BridgeError::NotFound,
        BridgeError::MethodNotAllowed,
        BridgeError::BodyTooLarge { limit: 1 },
        BridgeError::BodyTimeout,
        BridgeError::MissingHeader("Pb-Webhook-Type"),
        BridgeError::BadHeader("Pb-Webhook-MID"),
        BridgeError::EmptyBody,
        BridgeError::NotUtf8,
        BridgeError::NotObject,
        BridgeError::TooDeep,
        BridgeError::Unauthorized { basic: true },
        BridgeError::Forbidden([203, 0, 113, 1].into()),
        BridgeError::TopicMissing("t".into()),
        BridgeError::KafkaUnavailable,
        BridgeError::PublishTimeout,
        BridgeError::QueueFull,
        BridgeError::Kafka(KafkaError::MessageProduction(
            RDKafkaErrorCode::NotEnoughReplicas,
        )),
        BridgeError::ShuttingDown,
    ];
    for e in errs {
        match e.kind() {
            Kind::Rejected(_) => assert!(e.status().is_client_error(), "{e}"),
            Kind::Failed(_) => assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE, "{e}"),
        }
    }
}

#[test]
fn shedding_load_is_a_rejection_answered_503() {
    let e = BridgeError::Overloaded;
    assert_eq!(e.kind(), Kind::Rejected(RejectReason::Overloaded));
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn a_write_the_authorizer_denies_is_a_503_naming_the_topic_and_the_acl() {
    let denied = KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed);
    let e = BridgeError::from_kafka(denied, "popbill.taxinvoice");
    assert_eq!(e.kind(), Kind::Failed(FailReason::WriteDenied));
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    let said = e.to_string();
    assert!(
        said.contains("Write on topic popbill.taxinvoice") && said.contains("docs/deploy.md"),
        "{said}"
    );
}

#[test]
fn no_transactional_writer_ready_is_a_503_saying_what_readiness_says() {
    let why = "Kafka refuses transactional id \"b-0\": grant the bridge's principal Write and Describe on TransactionalId \"b-0\"";
    let e = BridgeError::TransactionsNotReady {
        why: Some(why.to_string()),
    };
    assert_eq!(e.kind(), Kind::Failed(FailReason::TransactionsNotReady));
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        e.to_string(),
        format!("no Kafka transactional writer is ready yet: {why}; retry")
    );
    let unknown = BridgeError::TransactionsNotReady { why: None };
    assert_eq!(
        unknown.to_string(),
        "no Kafka transactional writer is ready yet; retry"
    );
}

#[test]
fn kafka_errors_map_to_failures() {
    let timeout = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
    assert!(matches!(
        BridgeError::from_kafka(timeout, "t"),
        BridgeError::PublishTimeout
    ));
    let full = KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull);
    assert!(matches!(
        BridgeError::from_kafka(full, "t"),
        BridgeError::QueueFull
    ));
    let nr = KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas);
    assert_eq!(
        BridgeError::from_kafka(nr, "t").kind(),
        Kind::Failed(FailReason::KafkaError)
    );
}
