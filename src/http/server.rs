//! Listening: accept TCP connections (optionally TLS) and serve HTTP/1.1
//! with keep-alive on them with hyper, within the configured limits, until
//! told to stop; then stop accepting and let every open connection finish
//! the request it is on.
//!
//! A peer whose address alone decides the allow-list (it is not a trusted
//! proxy) and is not on it is closed at accept, before a slot, a TLS
//! handshake or a header: a stranger cannot hold connections open for
//! `header_read_timeout`.

use serde::{Deserialize, Serialize};
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
use tokio::sync::Semaphore;
use tracing::warn;

use crate::http::access::{self, Access};
use crate::http::answer::{self, Body};
use crate::http::tls::Tls;
use crate::labels::HttpErrorKind;
use crate::signal::Signal;
use crate::telemetry::events;
use crate::telemetry::metrics::Metrics;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open webhook connections at most; more are closed at once.
    pub max_connections: usize,
    /// Deliveries being published at once at most. A delivery takes its
    /// slot only once its whole body has arrived, so a sender that is slow
    /// to send its body never holds one. One that finds them all taken
    /// waits up to `inflight_wait` for a slot, then gets 503 with
    /// `Retry-After` (POPBiLL retries, so shedding loses nothing).
    pub max_inflight: usize,
    /// How long a delivery waits for an in-flight slot (or for room in
    /// `max_body_buffer_bytes`) before it is shed. A momentary stall (a
    /// slow broker round, a scheduling hiccup) then costs latency instead
    /// of a retry minutes later. `0s` sheds at once.
    #[serde(with = "humantime_serde")]
    pub inflight_wait: Duration,
    /// Bytes of request bodies held in memory at once at most, counted as
    /// they arrive: bodies being read and bodies waiting for Kafka. A
    /// sender holds only what it has sent, so many slow senders cannot
    /// take it all; a body that finds no room within `inflight_wait` gets
    /// 503 `overloaded`. Must be at least `server.max_body_bytes`.
    pub(crate) max_body_buffer_bytes: usize,
    /// Request headers at most.
    pub max_headers: usize,
    /// Bytes of the request line and headers at most.
    pub(crate) max_header_bytes: usize,
    /// Time a client has to send a request's headers, counted from when
    /// the connection is ready for the next request — so it is also how
    /// long an idle keep-alive connection stays open. (The body has until
    /// `server.request_timeout`.)
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How often credential and certificate files are checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl LimitsConfig {
    /// `max_body_buffer_bytes`, as many permits as a semaphore can hold.
    fn body_budget(&self) -> usize {
        self.max_body_buffer_bytes.min(Semaphore::MAX_PERMITS)
    }

    /// The slots for deliveries in flight (checked with the rest in
    /// [`LimitsConfig::limits`]).
    pub(crate) fn capacity(&self) -> Capacity {
        Capacity {
            slots: Semaphore::new(self.max_inflight),
            body_bytes: Semaphore::new(self.body_budget()),
            body_budget: self.body_budget(),
            wait: self.inflight_wait,
        }
    }

    /// The webhook listener's limits; every problem at once.
    pub fn limits(&self) -> Result<Limits, Vec<String>> {
        let mut errs = Vec::new();
        if self.max_connections == 0 || self.max_inflight == 0 || self.max_headers == 0 {
            errs.push(
                "limits.max_connections, max_inflight and max_headers must be above 0".into(),
            );
        }
        if self.max_header_bytes < 8192 {
            errs.push(
                "limits.max_header_bytes must be at least 8192 (hyper's minimum buffer)".into(),
            );
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Limits {
            max_connections: self.max_connections,
            max_headers: self.max_headers,
            max_header_bytes: self.max_header_bytes,
            header_read_timeout: self.header_read_timeout,
        })
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_inflight: 512,
            inflight_wait: Duration::from_millis(500),
            max_body_buffer_bytes: 64 * 1024 * 1024,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(30),
            reload_interval: Duration::from_secs(10),
        }
    }
}

/// The slots for deliveries in flight: `limits.max_inflight` of them, and
/// how long a delivery waits for one when all are taken.
pub(crate) struct Capacity {
    slots: Semaphore,
    /// One permit per byte of request body held (`limits.max_body_buffer_bytes`).
    body_bytes: Semaphore,
    /// The permits `body_bytes` started with.
    body_budget: usize,
    wait: Duration,
}

impl Capacity {
    /// A free slot now, or none.
    pub(crate) fn try_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.slots.try_acquire().ok()
    }

    /// A slot for one delivery, held until the guard drops. At once when
    /// one is free (no timer on that path); else the first to free up
    /// within `limits.inflight_wait` and before `deadline` (the request's
    /// own timer, so waiting never outlasts the request). `None`: overloaded.
    pub async fn slot(
        &self,
        deadline: std::pin::Pin<&mut tokio::time::Sleep>,
        metrics: &Metrics,
    ) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if let Some(slot) = self.try_slot() {
            return Some(slot);
        }
        if self.wait.is_zero() {
            return None;
        }
        let started = tokio::time::Instant::now();
        let slot = tokio::select! {
            biased;
            // The semaphore is never closed, so an error cannot happen; it
            // would read as overloaded.
            s = self.slots.acquire() => s.ok(),
            () = tokio::time::sleep(self.wait) => None,
            () = deadline => None,
        };
        events::waited_for_slot(metrics, started.elapsed(), slot.is_some());
        slot
    }

    /// Room for `n` more bytes of a body that is arriving, held until the
    /// permit drops: at once when there is room; else as soon as there is,
    /// within `limits.inflight_wait` and before `deadline`. `None`:
    /// overloaded (or `n` is more than the whole budget).
    pub async fn body_bytes(
        &self,
        n: usize,
        deadline: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let n = u32::try_from(n).ok()?;
        if let Ok(p) = self.body_bytes.try_acquire_many(n) {
            return Some(p);
        }
        if self.wait.is_zero() {
            return None;
        }
        tokio::select! {
            biased;
            p = self.body_bytes.acquire_many(n) => p.ok(),
            () = tokio::time::sleep(self.wait) => None,
            () = deadline => None,
        }
    }

    /// Bytes of request bodies held right now.
    pub(crate) fn body_bytes_held(&self) -> usize {
        self.body_budget
            .saturating_sub(self.body_bytes.available_permits())
    }
}

/// What bounds a listener's connections.
#[derive(Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_headers: usize,
    pub(crate) max_header_bytes: usize,
    /// For the request headers (and the TLS handshake); also closes idle
    /// keep-alive connections.
    pub header_read_timeout: Duration,
}

/// How one listener serves: its name in logs, its limits, and what guards
/// it.
pub(crate) struct Listener {
    pub name: &'static str,
    pub limits: Limits,
    /// TLS on this port, when configured.
    pub tls: Option<Arc<Tls>>,
    /// Peers it denies at accept are closed at once.
    pub access: Option<Arc<Access>>,
    /// Where connections and HTTP-layer refusals are counted.
    pub metrics: Option<Arc<Metrics>>,
    /// How long open connections may take to finish after `shutdown`.
    pub drain: Duration,
}

/// Serves `handler` on `listener` until `shutdown` fires, then waits for
/// open connections to finish their current request (at most
/// `how.drain`). Returns whether every connection finished in time.
pub(crate) async fn serve<H, F>(
    listener: TcpListener,
    how: Listener,
    handler: H,
    mut shutdown: Signal,
) -> bool
where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let Listener {
        name,
        limits,
        tls,
        access,
        metrics,
        drain,
    } = how;
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Every connection's task, so that those still open after the drain
    // budget can be closed (finished ones are reaped as the loop goes).
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
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
                    && a.verdict_at_accept(peer) == Some(access::SourceCheck::Denied)
                {
                    if let Some(m) = &metrics {
                        events::refused_at_accept(m, name, peer);
                    }
                    continue;
                }
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    // Closing at once is the cheapest answer to a flood;
                    // POPBiLL retries a refused connection later.
                    if let Some(m) = &metrics {
                        events::connection_limit_reached(m, name, peer);
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (handler, limits, watcher, metrics) =
                    (handler.clone(), limits.clone(), graceful.watcher(), metrics.clone());
                let acceptor = tls.as_ref().and_then(|t| t.acceptor());
                connections.spawn(async move {
                    let _slot = slot;
                    let _open = metrics.as_ref().map(|m| m.connection_open());
                    match acceptor {
                        None => serve_one(name, stream, peer, handler, &limits, watcher, metrics.clone()).await,
                        Some(acceptor) => {
                            let hs = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await;
                            match hs {
                                Ok(Ok(tls_stream)) => {
                                    serve_one(name, tls_stream, peer, handler, &limits, watcher, metrics.clone()).await
                                }
                                _ => {
                                    if let Some(m) = &metrics {
                                        events::tls_handshake_failed(m, name, peer);
                                    }
                                }
                            }
                        }
                    }
                });
            }
            _ = shutdown.fired() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => true,
        _ = tokio::time::sleep(drain) => {
            warn!(listener = name, open = connections.len(), "connections still open after the drain budget; closing them");
            connections.abort_all();
            false
        }
    }
}

/// hyper's own bound on a request's headers when it is given none (it
/// answers 431 past it, as it does past `max_headers`).
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

async fn serve_one<S, H, F>(
    name: &'static str,
    io: S,
    peer: SocketAddr,
    handler: H,
    limits: &Limits,
    watcher: Watcher,
    metrics: Option<Arc<Metrics>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    // Given `max_headers`, hyper fills that many header slots on every
    // request (~1.4k instructions, issue #25); left at its default it
    // fills none. So a limit within hyper's default is applied here, to
    // the headers hyper parsed, with hyper's answer (431, connection
    // closed) and the same count.
    let max_headers = limits.max_headers;
    let refusals = metrics.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let count = req.headers().len();
        let refused = count > max_headers;
        if refused {
            too_many_headers(refusals.as_deref(), name, peer, count, max_headers);
        }
        // The handler's future is made inside this one, not moved into it:
        // it is large, and each move of it is a copy.
        let handler = handler.clone();
        async move {
            if refused {
                return Ok::<_, Infallible>(answer::too_many_headers());
            }
            Ok(handler(peer, req).await)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    if max_headers > HYPER_DEFAULT_MAX_HEADERS {
        builder.max_headers(max_headers);
    }
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        // hyper answered (431, 400) or dropped the connection before
        // our handler saw a request: count and log it here.
        if let Some(m) = &metrics {
            events::http_refused(m, name, peer, http_error_kind(&e), &e);
        }
    }
}

/// Counts and logs a request refused for its header count. Out of line:
/// the path of every request stays as small as it was without the check.
#[cold]
#[inline(never)]
fn too_many_headers(
    metrics: Option<&Metrics>,
    name: &str,
    peer: SocketAddr,
    count: usize,
    max_headers: usize,
) {
    if let Some(m) = metrics {
        let why = format_args!("{count} headers, more than limits.max_headers ({max_headers})");
        events::http_refused(m, name, peer, HttpErrorKind::HeadersTooLarge, &why);
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

#[cfg(test)]
mod tests;
