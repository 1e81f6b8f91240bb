//! Talking HTTP to the bridge: an ordinary client, a POST written by hand
//! over TCP, and a TLS client that trusts one certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::bridge::{Listeners, unique};
use super::samples::{ISSUE_BODY, issue_headers};

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let resp = client().request(req).await.expect("HTTP exchange");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A delivery to the bridge's webhook path, where the bridge may die
/// mid-request: the failure to get an answer is a result, not a panic.
pub async fn try_post(
    webhook: SocketAddr,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Answer, String> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{webhook}/popbill/webhook"));
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = client().request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A delivery to the bridge's webhook path.
pub async fn post(bridge: &impl Listeners, headers: &[(String, String)], body: Vec<u8>) -> Answer {
    request(
        bridge.webhook(),
        Method::POST,
        "/popbill/webhook",
        headers,
        body,
    )
    .await
}

pub async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let a = request(addr, Method::GET, path, &[], Vec::new()).await;
    (a.status, a.body)
}

/// A POST written by hand over TCP, reading the answer while the body is
/// still being sent — as curl does, and as a server that refuses a body
/// early needs. `chunked` sends the body without a Content-Length.
pub async fn raw_post(
    addr: SocketAddr,
    headers: &[(String, String)],
    body: Vec<u8>,
    chunked: bool,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!("POST /popbill/webhook HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    }
    let writer = tokio::spawn(async move {
        // Errors are expected once the server refuses the body.
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for part in body.chunks(64 * 1024) {
            let ok = if chunked {
                let mut c = format!("{:x}\r\n", part.len()).into_bytes();
                c.extend_from_slice(part);
                c.extend_from_slice(b"\r\n");
                wr.write_all(&c).await
            } else {
                wr.write_all(part).await
            };
            if ok.is_err() {
                return;
            }
        }
        if chunked {
            let _ = wr.write_all(b"0\r\n\r\n").await;
        }
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A TLS client that trusts only `cert`; returns whether a delivery over it
/// was answered 200 `OK`.
pub async fn post_over_tls(addr: SocketAddr, cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(cert.cert.der().clone()).is_err() {
        return false;
    }
    let client_cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let Ok(tls) = connector.connect(name, tcp).await else {
        return false;
    };
    let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await
    else {
        return false;
    };
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/popbill/webhook");
    for (k, v) in issue_headers(&unique("tlsr-")) {
        req = req.header(k, v);
    }
    let Ok(req) = req.body(Full::new(Bytes::from_static(ISSUE_BODY))) else {
        return false;
    };
    let Ok(resp) = send.send_request(req).await else {
        return false;
    };
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    status == StatusCode::OK && &body[..] == b"OK"
}
