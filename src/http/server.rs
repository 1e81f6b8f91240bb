//! Listening: accept TCP connections (optionally TLS) and serve HTTP/1.1
//! with keep-alive on them with hyper, within the configured limits, until
//! told to stop; then stop accepting and let every open connection finish
//! the request it is on.
//!
//! A peer whose address alone decides the allow-list (it is not a trusted
//! proxy) and is not on it is closed at accept, before a slot, a TLS
//! handshake or a header: a stranger cannot hold connections open for
//! `header_read_timeout`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

use crate::http::access::{self, Access};
use crate::http::answer::Body;
use crate::http::tls::Tls;
use crate::telemetry::metrics::Metrics;

/// What bounds a listener's connections.
#[derive(Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    /// For the request headers (and the TLS handshake); also closes idle
    /// keep-alive connections.
    pub header_read_timeout: Duration,
}

/// Serves `handler` on `listener` until `shutdown` turns true, then waits
/// for open connections to finish their current request (at most `drain`).
/// With `access`, peers it denies at accept are closed at once.
/// Returns whether every connection finished in time.
#[allow(clippy::too_many_arguments)]
pub async fn serve<H, F>(
    name: &'static str,
    listener: TcpListener,
    handler: H,
    limits: Limits,
    tls: Option<Arc<Tls>>,
    access: Option<Arc<Access>>,
    metrics: Option<Arc<Metrics>>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) -> bool
where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Usually out of file descriptors: back off instead
                        // of spinning.
                        warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Before the slot: refusing a stranger must not cost one.
                if let Some(a) = &access
                    && a.verdict_at_accept(peer) == Some(access::Verdict::Denied)
                {
                    refused_at_accept(name, peer, metrics.as_deref());
                    continue;
                }
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    // Closing at once is the cheapest answer to a flood;
                    // POPBiLL retries a refused connection later.
                    if let Some(m) = &metrics {
                        m.connections_rejected.inc();
                    }
                    debug!(listener = name, %peer, "connection limit reached; closing");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (handler, limits, watcher, metrics) =
                    (handler.clone(), limits.clone(), graceful.watcher(), metrics.clone());
                let acceptor = tls.as_ref().and_then(|t| t.acceptor());
                tokio::spawn(async move {
                    let _slot = slot;
                    let _open = metrics.as_ref().map(OpenGuard::new);
                    match acceptor {
                        None => serve_one(name, stream, peer, handler, &limits, watcher, metrics.as_deref()).await,
                        Some(acceptor) => {
                            let hs = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await;
                            match hs {
                                Ok(Ok(tls_stream)) => {
                                    serve_one(name, tls_stream, peer, handler, &limits, watcher, metrics.as_deref()).await
                                }
                                _ => {
                                    if let Some(m) = &metrics {
                                        m.tls_handshake_failures.inc();
                                    }
                                    debug!(listener = name, %peer, "TLS handshake failed or timed out");
                                }
                            }
                        }
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => true,
        _ = tokio::time::sleep(drain) => {
            warn!(listener = name, "connections still open after the drain budget; closing them");
            false
        }
    }
}

/// A connection closed at accept because its source is not on
/// `access.allow`; counted with the other refusals of the HTTP layer.
fn refused_at_accept(name: &'static str, peer: SocketAddr, metrics: Option<&Metrics>) {
    let kind = HttpErrorKind::ForbiddenAtAccept;
    if let Some(m) = metrics {
        m.http_error(kind).inc();
    }
    info!(listener = name, %peer, kind = kind.as_str(), "connection closed at accept: source address is not on access.allow");
}

async fn serve_one<S, H, F>(
    name: &'static str,
    io: S,
    peer: SocketAddr,
    handler: H,
    limits: &Limits,
    watcher: Watcher,
    metrics: Option<&Metrics>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let service = service_fn(move |req| {
        let fut = handler(peer, req);
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        // hyper answered (431, 400, 408) or dropped the connection before
        // our handler saw a request: count and log it here.
        let kind = http_error_kind(&e);
        if let Some(m) = metrics {
            m.http_error(kind).inc();
        }
        match kind {
            HttpErrorKind::Io | HttpErrorKind::Canceled => {
                debug!(listener = name, %peer, error = %e, "connection ended")
            }
            _ => {
                info!(listener = name, %peer, kind = kind.as_str(), error = %e, "HTTP request refused before reaching the handler")
            }
        }
    }
}

/// Connection-level failures, a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorKind {
    HeadersTooLarge,
    BadRequest,
    HeaderTimeout,
    Canceled,
    Io,
    /// Closed at accept: the source is not on `access.allow`.
    ForbiddenAtAccept,
}

impl HttpErrorKind {
    pub const ALL: [HttpErrorKind; 6] = [
        HttpErrorKind::HeadersTooLarge,
        HttpErrorKind::BadRequest,
        HttpErrorKind::HeaderTimeout,
        HttpErrorKind::Canceled,
        HttpErrorKind::Io,
        HttpErrorKind::ForbiddenAtAccept,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HttpErrorKind::HeadersTooLarge => "headers_too_large",
            HttpErrorKind::BadRequest => "bad_request",
            HttpErrorKind::HeaderTimeout => "header_timeout",
            HttpErrorKind::Canceled => "canceled",
            HttpErrorKind::Io => "io",
            HttpErrorKind::ForbiddenAtAccept => "forbidden_at_accept",
        }
    }
}

fn http_error_kind(e: &hyper::Error) -> HttpErrorKind {
    if e.is_parse_too_large() {
        HttpErrorKind::HeadersTooLarge
    } else if e.is_parse() || e.is_parse_status() {
        HttpErrorKind::BadRequest
    } else if e.is_timeout() {
        HttpErrorKind::HeaderTimeout
    } else if e.is_canceled() || e.is_closed() || e.is_incomplete_message() {
        HttpErrorKind::Canceled
    } else {
        HttpErrorKind::Io
    }
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard(Arc<Metrics>);

impl OpenGuard {
    fn new(m: &Arc<Metrics>) -> Self {
        m.open_connections.inc();
        OpenGuard(m.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open_connections.dec();
    }
}
