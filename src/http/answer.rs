//! Answer: the HTTP response for each outcome, built in one place.
//!
//! POPBiLL counts a delivery as done only on status 200 with body `OK` or
//! `{"result":"OK"}`; we send that only after Kafka confirmed the write.
//! Everything else gets its status from [`BridgeError::status`] and a short
//! plain-text reason; failures add `Retry-After`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use crate::config::OkBody;
use crate::error::BridgeError;

pub type Body = Full<Bytes>;

pub fn ok(body: OkBody) -> Response<Body> {
    let ct = match body {
        OkBody::Plain => "text/plain; charset=utf-8",
        OkBody::Json => "application/json",
    };
    text(
        StatusCode::OK,
        ct,
        Bytes::from_static(body.as_str().as_bytes()),
    )
}

pub fn error(e: &BridgeError, retry_after: Duration) -> Response<Body> {
    let status = e.status();
    let mut resp = text(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(format!("{e}\n")),
    );
    let h = resp.headers_mut();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    }
    match e {
        BridgeError::MethodNotAllowed => {
            h.insert(ALLOW, HeaderValue::from_static("POST"));
        }
        BridgeError::Unauthorized { basic: true } => {
            h.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="popbill-bridge", charset="UTF-8""#),
            );
        }
        _ => {}
    }
    resp
}

pub fn text(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(r: Response<Body>) -> String {
        let b = r.into_body().collect().await.expect("full body").to_bytes();
        String::from_utf8(b.to_vec()).expect("utf8")
    }

    #[tokio::test]
    async fn ok_bodies_are_what_popbill_accepts() {
        assert_eq!(body_of(ok(OkBody::Plain)).await, "OK");
        assert_eq!(body_of(ok(OkBody::Json)).await, r#"{"result":"OK"}"#);
    }

    #[tokio::test]
    async fn failures_carry_retry_after_and_a_reason() {
        let r = error(&BridgeError::PublishTimeout, Duration::from_secs(30));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[RETRY_AFTER], "30");
        assert_eq!(
            body_of(r).await,
            "Kafka did not confirm the write in time\n"
        );
        let r = error(&BridgeError::MethodNotAllowed, Duration::from_secs(30));
        assert_eq!(r.headers()[ALLOW], "POST");
        assert!(r.headers().get(RETRY_AFTER).is_none());
        let r = error(
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
        let r = error(
            &BridgeError::Unauthorized { basic: false },
            Duration::from_secs(30),
        );
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
        let r = error(&BridgeError::Overloaded, Duration::from_secs(30));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[RETRY_AFTER], "30");
    }
}
