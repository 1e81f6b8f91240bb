use super::*;
use hyper::header::{ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};

#[tokio::test]
async fn each_error_carries_its_status_headers_and_reason() {
    let r = failure(&BridgeError::PublishTimeout, Duration::from_secs(30));
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[RETRY_AFTER], "30");
    assert_eq!(
        body_of(r).await,
        "Kafka did not confirm the write in time\n"
    );
    let r = failure(&BridgeError::MethodNotAllowed, Duration::from_secs(30));
    assert_eq!(r.headers()[ALLOW], "POST");
    assert!(r.headers().get(RETRY_AFTER).is_none());
    let r = failure(
        &BridgeError::Unauthorized { basic: true },
        Duration::from_secs(30),
    );
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .expect("ascii")
            .starts_with("Basic")
    );
    let r = failure(
        &BridgeError::Unauthorized { basic: false },
        Duration::from_secs(30),
    );
    assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
    let r = failure(&BridgeError::Overloaded, Duration::from_secs(30));
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[RETRY_AFTER], "30");
}
