//! Answer: the HTTP response for each outcome, built in one place.
//!
//! POPBiLL counts a delivery as done only on status 200 with body `OK` or
//! `{"result":"OK"}`; we send that only after Kafka confirmed the write.
//! Everything else is [`crate::error::BridgeError::into_response`].

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::OkBody;

pub type Body = Full<Bytes>;

pub const PLAIN: &str = "text/plain; charset=utf-8";

pub fn ok(body: OkBody) -> Response<Body> {
    let ct = match body {
        OkBody::Plain => PLAIN,
        OkBody::Json => "application/json",
    };
    text(
        StatusCode::OK,
        ct,
        Bytes::from_static(body.as_str().as_bytes()),
    )
}

pub fn text(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// An answer's body as text, for tests of whatever builds answers.
#[cfg(test)]
pub(crate) async fn body_of(r: Response<Body>) -> String {
    use http_body_util::BodyExt;
    let b = r.into_body().collect().await.expect("full body").to_bytes();
    String::from_utf8(b.to_vec()).expect("utf8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ok_bodies_are_what_popbill_accepts() {
        assert_eq!(body_of(ok(OkBody::Plain)).await, "OK");
        assert_eq!(body_of(ok(OkBody::Json)).await, r#"{"result":"OK"}"#);
    }
}
