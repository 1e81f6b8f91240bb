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
use crate::http::answer::Body;
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
    pub max_body_buffer_bytes: usize,
    /// Request headers at most.
    pub max_headers: usize,
    /// Bytes of the request line and headers at most.
    pub max_header_bytes: usize,
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
    pub fn capacity(&self) -> Capacity {
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
pub struct Capacity {
    slots: Semaphore,
    /// One permit per byte of request body held (`limits.max_body_buffer_bytes`).
    body_bytes: Semaphore,
    /// The permits `body_bytes` started with.
    body_budget: usize,
    wait: Duration,
}

impl Capacity {
    /// A free slot now, or none.
    pub fn try_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
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
    pub fn body_bytes_held(&self) -> usize {
        self.body_budget
            .saturating_sub(self.body_bytes.available_permits())
    }
}

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

/// How one listener serves: its name in logs, its limits, and what guards
/// it.
pub struct Listener {
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
pub async fn serve<H, F>(
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
                tokio::spawn(async move {
                    let _slot = slot;
                    let _open = metrics.as_ref().map(|m| m.connection_open());
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
            warn!(listener = name, "connections still open after the drain budget; closing them");
            false
        }
    }
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
        // hyper answered (431, 400) or dropped the connection before
        // our handler saw a request: count and log it here.
        if let Some(m) = metrics {
            events::http_refused(m, name, peer, http_error_kind(&e), &e);
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use hyper::StatusCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::task::JoinHandle;

    use crate::http::access::AccessConfig;
    use crate::http::answer;
    use crate::signal::{self, Trigger};

    fn limits() -> Limits {
        Limits {
            max_connections: 16,
            max_headers: 16,
            max_header_bytes: 8192,
            header_read_timeout: Duration::from_secs(10),
        }
    }

    /// A listener on loopback whose handler answers `hello`, after
    /// sleeping the milliseconds a `/sleep/<ms>` path names.
    struct Running {
        addr: SocketAddr,
        trigger: Trigger,
        served: JoinHandle<bool>,
        metrics: Arc<Metrics>,
        /// Requests that reached the handler.
        calls: Arc<AtomicUsize>,
    }

    async fn start(limits: Limits, access: Option<Access>, drain: Duration) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics = Arc::new(Metrics::new(&[]));
        let calls = Arc::new(AtomicUsize::new(0));
        let (trigger, signal) = signal::signal();
        let counted = calls.clone();
        let handler = move |_peer: SocketAddr, req: Request<Incoming>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let ms: u64 = req
                .uri()
                .path()
                .strip_prefix("/sleep/")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0);
            async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                answer::text(StatusCode::OK, answer::PLAIN, Bytes::from_static(b"hello"))
            }
        };
        let how = Listener {
            name: "test",
            limits,
            tls: None,
            access: access.map(Arc::new),
            metrics: Some(metrics.clone()),
            drain,
        };
        let served = tokio::spawn(serve(listener, how, handler, signal));
        Running {
            addr,
            trigger,
            served,
            metrics,
            calls,
        }
    }

    /// The value of one sample of the listener's metrics (0 when absent).
    fn metric(m: &Metrics, series: &str) -> f64 {
        let text = String::from_utf8(m.render()).expect("utf8");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (at most a second) for a counter that is bumped when a
    /// connection ends, after the client already saw the answer.
    async fn eventually(m: &Metrics, series: &str, want: f64) {
        let until = tokio::time::Instant::now() + Duration::from_secs(1);
        while metric(m, series) != want && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(metric(m, series), want, "{series}");
    }

    /// Sends `raw` and reads the answer: the status and body, or `None`
    /// when the server closed the connection without a byte.
    async fn send(stream: &mut TcpStream, raw: &[u8]) -> Option<(u16, String)> {
        // Writing may fail once the server closed: the read tells.
        let _ = stream.write_all(raw).await;
        read_answer(stream).await
    }

    async fn read_answer(stream: &mut TcpStream) -> Option<(u16, String)> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut chunk))
                .await
                .expect("an answer or a close within 3s")
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
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
        if buf.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((status, body))
    }

    fn get(path: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
    }

    async fn connect(addr: SocketAddr) -> TcpStream {
        TcpStream::connect(addr).await.expect("connect")
    }

    /// Whether the server closes `stream` without writing, before `within`
    /// (and so long before `header_read_timeout`).
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(within, stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    #[tokio::test]
    async fn a_listener_serves_until_its_signal_fires_then_finishes_the_open_request() {
        let r = start(limits(), None, Duration::from_secs(2)).await;
        let mut idle = connect(r.addr).await;
        assert_eq!(
            send(&mut idle, &get("/")).await,
            Some((200, "hello".into()))
        );
        let addr = r.addr;
        let slow = tokio::spawn(async move {
            let mut s = connect(addr).await;
            send(&mut s, &get("/sleep/400")).await
        });
        while r.calls.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let fired = tokio::time::Instant::now();
        r.trigger.fire();
        // The request in progress is answered; the idle keep-alive
        // connection does not hold the drain up.
        assert_eq!(slow.await.expect("client"), Some((200, "hello".into())));
        let all_finished = tokio::time::timeout(Duration::from_secs(2), r.served)
            .await
            .expect("serve returns after the drain")
            .expect("serve task");
        assert!(all_finished);
        assert!(
            fired.elapsed() < Duration::from_secs(1),
            "{:?}",
            fired.elapsed()
        );
        assert!(closed_within(&mut idle, Duration::from_secs(1)).await);
        assert!(
            TcpStream::connect(r.addr).await.is_err(),
            "nothing listens after shutdown"
        );
    }

    #[tokio::test]
    async fn a_request_outlasting_the_drain_budget_makes_serve_report_false() {
        let r = start(limits(), None, Duration::from_millis(200)).await;
        let addr = r.addr;
        let _slow = tokio::spawn(async move {
            let mut s = connect(addr).await;
            send(&mut s, &get("/sleep/5000")).await
        });
        while r.calls.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let fired = tokio::time::Instant::now();
        r.trigger.fire();
        let all_finished = tokio::time::timeout(Duration::from_secs(2), r.served)
            .await
            .expect("serve gives up at the drain budget")
            .expect("serve task");
        assert!(!all_finished);
        let took = fired.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(1),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn connections_beyond_max_connections_are_closed_at_accept_and_counted() {
        let r = start(
            Limits {
                max_connections: 1,
                ..limits()
            },
            None,
            Duration::from_secs(1),
        )
        .await;
        let mut first = connect(r.addr).await;
        assert_eq!(
            send(&mut first, &get("/")).await,
            Some((200, "hello".into()))
        );
        // The only slot is held by the idle keep-alive connection.
        let mut second = connect(r.addr).await;
        assert!(closed_within(&mut second, Duration::from_secs(1)).await);
        assert_eq!(
            metric(&r.metrics, "popbill_bridge_connections_rejected_total"),
            1.0
        );
        assert_eq!(metric(&r.metrics, "popbill_bridge_open_connections"), 1.0);

        // Closing it frees the slot.
        drop(first);
        let until = tokio::time::Instant::now() + Duration::from_secs(1);
        let answer = loop {
            let mut third = connect(r.addr).await;
            match send(&mut third, &get("/")).await {
                Some(a) => break Some(a),
                None if tokio::time::Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                None => break None,
            }
        };
        assert_eq!(answer, Some((200, "hello".into())));
        assert_eq!(r.calls.load(Ordering::SeqCst), 2);
    }

    fn access(allow: &[&str], trusted_proxies: &[&str]) -> Access {
        Access::new(&AccessConfig {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            trusted_proxies: trusted_proxies.iter().map(|s| s.to_string()).collect(),
            ..AccessConfig::default()
        })
        .expect("access")
    }

    #[tokio::test]
    async fn a_stranger_is_closed_at_accept_before_a_byte_is_read_and_counted() {
        let r = start(
            Limits {
                max_connections: 1,
                ..limits()
            },
            Some(access(&["203.0.113.7"], &[])),
            Duration::from_secs(1),
        )
        .await;
        for _ in 0..3 {
            // Closed without the client sending anything, and without
            // waiting for header_read_timeout (10 s).
            let mut s = connect(r.addr).await;
            assert!(closed_within(&mut s, Duration::from_secs(1)).await);
        }
        assert_eq!(r.calls.load(Ordering::SeqCst), 0);
        eventually(
            &r.metrics,
            r#"popbill_bridge_http_errors_total{kind="forbidden_at_accept"}"#,
            3.0,
        )
        .await;
        // Refusing a stranger costs no connection slot.
        assert_eq!(
            metric(&r.metrics, "popbill_bridge_connections_rejected_total"),
            0.0
        );
    }

    #[tokio::test]
    async fn a_trusted_proxy_is_not_judged_at_accept() {
        // Its clients are only known from the request: the handler decides.
        let r = start(
            limits(),
            Some(access(&["203.0.113.7"], &["127.0.0.1"])),
            Duration::from_secs(1),
        )
        .await;
        let mut s = connect(r.addr).await;
        assert_eq!(send(&mut s, &get("/")).await, Some((200, "hello".into())));
        assert_eq!(
            metric(
                &r.metrics,
                r#"popbill_bridge_http_errors_total{kind="forbidden_at_accept"}"#
            ),
            0.0
        );
    }

    #[tokio::test]
    async fn oversized_or_too_many_headers_get_431_counted_as_headers_too_large() {
        let r = start(
            Limits {
                max_headers: 4,
                ..limits()
            },
            None,
            Duration::from_secs(1),
        )
        .await;
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(16 * 1024)
        );
        let mut s = connect(r.addr).await;
        assert_eq!(send(&mut s, big.as_bytes()).await.map(|a| a.0), Some(431));
        let many: String = (0..10).map(|i| format!("X-H{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        let mut s = connect(r.addr).await;
        assert_eq!(send(&mut s, many.as_bytes()).await.map(|a| a.0), Some(431));
        assert_eq!(r.calls.load(Ordering::SeqCst), 0);
        eventually(
            &r.metrics,
            r#"popbill_bridge_http_errors_total{kind="headers_too_large"}"#,
            2.0,
        )
        .await;
    }

    #[tokio::test]
    async fn a_malformed_request_gets_400_counted_as_bad_request() {
        let r = start(limits(), None, Duration::from_secs(1)).await;
        let mut s = connect(r.addr).await;
        assert_eq!(
            send(&mut s, b"NOT AN HTTP REQUEST\x01\r\n\r\n")
                .await
                .map(|a| a.0),
            Some(400)
        );
        assert_eq!(r.calls.load(Ordering::SeqCst), 0);
        eventually(
            &r.metrics,
            r#"popbill_bridge_http_errors_total{kind="bad_request"}"#,
            1.0,
        )
        .await;
    }

    #[tokio::test]
    async fn headers_not_complete_within_header_read_timeout_are_counted_as_header_timeout() {
        let r = start(
            Limits {
                header_read_timeout: Duration::from_millis(200),
                ..limits()
            },
            None,
            Duration::from_secs(1),
        )
        .await;
        let mut s = connect(r.addr).await;
        let started = tokio::time::Instant::now();
        let answer = send(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
        // hyper closes such a connection without an answer.
        assert_eq!(answer, None);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        eventually(
            &r.metrics,
            r#"popbill_bridge_http_errors_total{kind="header_timeout"}"#,
            1.0,
        )
        .await;
    }

    // --- http_error_kind, on errors hyper really gives -------------------

    /// The error hyper's connection ends with after reading `raw` from a
    /// client that then `hangs_up` (or stays silent).
    async fn error_after(raw: &[u8], hangs_up: bool) -> hyper::Error {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        client.write_all(raw).await.expect("write");
        if hangs_up {
            drop(client);
        } else {
            // Keep the client open for the duration.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                drop(client);
            });
        }
        let service = service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(answer::text(StatusCode::OK, answer::PLAIN, Bytes::new()))
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(100))
            .max_buf_size(8192)
            .serve_connection(TokioIo::new(server), service);
        tokio::time::timeout(Duration::from_secs(2), conn)
            .await
            .expect("the connection ends")
            .expect_err("hyper refuses it")
    }

    /// A transport that breaks in the middle of a request head (hyper
    /// takes a failure before any byte for a clean close).
    struct Broken {
        started: bool,
    }

    impl AsyncRead for Broken {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.started {
                return std::task::Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
            }
            self.started = true;
            buf.put_slice(b"GET / HTTP/1.1\r\n");
            std::task::Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Broken {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn http_error_kind_maps_each_hyper_refusal_to_its_label() {
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(16 * 1024));
        for (raw, hangs_up, want) in [
            (big.as_bytes(), false, HttpErrorKind::HeadersTooLarge),
            (
                &b"NOT HTTP\x01\r\n\r\n"[..],
                false,
                HttpErrorKind::BadRequest,
            ),
            (
                &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
                false,
                HttpErrorKind::HeaderTimeout,
            ),
            (
                &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
                true,
                HttpErrorKind::Canceled,
            ),
        ] {
            let e = error_after(raw, hangs_up).await;
            assert_eq!(http_error_kind(&e), want, "{e:?}");
        }
        let service = service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(answer::text(StatusCode::OK, answer::PLAIN, Bytes::new()))
        });
        let e = http1::Builder::new()
            .serve_connection(TokioIo::new(Broken { started: false }), service)
            .await
            .expect_err("the transport fails");
        assert_eq!(http_error_kind(&e), HttpErrorKind::Io, "{e:?}");
    }
}
