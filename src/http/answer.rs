//! Answer: the HTTP response for each outcome, built in one place.
//!
//! POPBiLL counts a delivery as done only on status 200 with body `OK` or
//! `{"result":"OK"}`; we send that only after Kafka confirmed the write.
//! Everything else is [`failure`]: the status each [`BridgeError`] carries
//! (see [`BridgeError::status`]), its reason as text, and the headers the
//! status calls for.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use crate::error::BridgeError;
use crate::http::OkBody;

pub type Body = Full<Bytes>;

pub(crate) const PLAIN: &str = "text/plain; charset=utf-8";

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

/// The answer POPBiLL gets for an error: its status, its reason as a short
/// plain text, and the headers the status calls for (`Retry-After` on
/// every 503 so POPBiLL retries; `Allow` on 405; `WWW-Authenticate` when
/// Basic credentials are expected).
pub fn failure(e: &BridgeError, retry_after: Duration) -> Response<Body> {
    let status = e.status();
    let mut resp = text(status, PLAIN, Bytes::from(format!("{e}\n")));
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

/// More request headers than `limits.max_headers`: what hyper answers past
/// its own bound (431, no body), and the connection closed after it.
pub(crate) fn too_many_headers() -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
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
mod tests;
