//! `popbill-bridge send`: a POPBiLL-like sender, to check a deployment end
//! to end (like `stripe trigger`).
//!
//! It sends a sample delivery with POPBiLL's headers, judges the answer by
//! POPBiLL's rule (status 200 with body `OK` or `{"result":"OK"}`;
//! anything else, or no answer within the timeout, is a failure), retries
//! the way POPBiLL does, and says plainly what happened at each try.
//!
//! The library half is for every tool that needs to send like POPBiLL:
//! [`Sender::try_once`] makes one try on a connection of its own (as a
//! fresh POPBiLL delivery would) and names what went wrong — connection
//! refused, certificate not trusted, hostname mismatch, timed out and in
//! which phase — and [`deliver`] is the retry loop around it.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use crate::commands::samples::{self, Sample};
use crate::http::access::POPBILL_SOURCES;

/// The ports POPBiLL delivers to.
pub const POPBILL_PORTS: &[u16] = &[80, 443, 9854];

/// At most this much of an answer's body is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// What is sent.

/// One delivery: headers in the order they are sent, and the body bytes.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Delivery {
    pub fn from_sample(s: &Sample) -> Delivery {
        Delivery {
            headers: s.headers.clone(),
            body: Bytes::from(s.body.clone()),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets a header, replacing any of the same name (case-insensitive) in
    /// its place, or adding it at the end.
    pub fn set_header(&mut self, name: &str, value: &str) {
        match self
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(h) => h.1 = value.to_string(),
            None => self.headers.push((name.to_string(), value.to_string())),
        }
    }

    /// The `Pb-Webhook-MID`.
    pub fn mid(&self) -> Option<&str> {
        self.header("Pb-Webhook-MID")
    }
}

/// A MID no other delivery has, shaped like POPBiLL's
/// (`025111409301-7c1d2e3f4a5b6c7d8e9f001`: 12 digits from the time, a
/// dash, 23 hex digits).
pub fn fresh_mid() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now();
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digits: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .skip(2)
        .take(11)
        .collect();
    let mut h = Sha256::new();
    h.update(nanos.to_be_bytes());
    h.update(std::process::id().to_be_bytes());
    h.update(N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("0{digits}-{}", &hex[..23])
}

/// `Authorization: Basic …` for `user:pass`.
pub fn basic_authorization(user_pass: &str) -> String {
    format!("Basic {}", base64(user_pass.as_bytes()))
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Where it goes.

/// A parsed callback URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub https: bool,
    /// Without brackets for IPv6 literals.
    pub host: String,
    pub port: u16,
    /// The `Host` header: the URL's authority.
    pub authority: String,
    pub path_and_query: String,
    pub url: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => return Err(format!("{url}: scheme {other} (use http:// or https://)")),
            None => {
                return Err(format!(
                    "{url}: give the whole URL, e.g. https://hooks.example.com/popbill/webhook"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url}: no host"))?
            .clone();
        if authority.as_str().contains('@') {
            return Err(format!(
                "{url}: credentials in the URL are not sent by POPBiLL; use --basic user:pass"
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        Ok(Target {
            https,
            host,
            port,
            authority: authority.as_str().to_string(),
            path_and_query,
            url: url.to_string(),
        })
    }

    /// Whether POPBiLL would deliver to this port at all.
    pub fn popbill_port(&self) -> bool {
        POPBILL_PORTS.contains(&self.port)
    }
}

// ---------------------------------------------------------------------------
// One try.

/// How a try went.
#[derive(Debug)]
pub struct TryOutcome {
    /// When the try started.
    pub at: SystemTime,
    /// How long until the answer was read or the try failed.
    pub elapsed: Duration,
    /// The address connected to, once known.
    pub peer: Option<SocketAddr>,
    pub result: Result<Answer, Failure>,
}

impl TryOutcome {
    /// Whether POPBiLL would count this delivery as done.
    pub fn succeeded(&self) -> bool {
        matches!(&self.result, Ok(a) if a.accepted())
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    /// The body, at most 64 KiB of it.
    pub body: Bytes,
}

impl Answer {
    /// POPBiLL's rule: 200 with body `OK` or `{"result":"OK"}`.
    pub fn accepted(&self) -> bool {
        popbill_accepts(self.status, &self.body)
    }

    /// Why POPBiLL would not count it, and what to look at; `None` when it
    /// would.
    pub fn problem(&self) -> Option<String> {
        if self.accepted() {
            return None;
        }
        let header = |n: &str| {
            self.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        Some(match self.status {
            200 if self.body.is_empty() => {
                "status 200 with an empty body: POPBiLL counts only OK or {\"result\":\"OK\"}"
                    .into()
            }
            200 => format!(
                "status 200 but the body is {}: POPBiLL counts only OK or {{\"result\":\"OK\"}}",
                shown_body(&self.body)
            ),
            s @ 300..=399 => format!(
                "status {s}, a redirect to {:?}: the callback URL itself must answer OK",
                header("location")
            ),
            401 => "401: the receiver wants credentials (--basic user:pass or --api-key KEY, the values set in POPBiLL)".into(),
            403 => format!(
                "403: refused, e.g. by a source allow-list (POPBiLL sends from {}; this machine is not one of them) or wrong credentials",
                POPBILL_SOURCES.join(" and ")
            ),
            404 => "404: nothing at this path (popbill-bridge listens on server.webhook_path, /popbill/webhook by default)".into(),
            503 => {
                let after = header("retry-after");
                format!(
                    "503: the receiver could not take it now{}; POPBiLL sends it again later",
                    if after.is_empty() { String::new() } else { format!(" (Retry-After: {after})") }
                )
            }
            s => format!("status {s}: POPBiLL counts only 200 with body OK or {{\"result\":\"OK\"}}"),
        })
    }
}

/// POPBiLL's rule for a successful delivery: status 200 and body `OK`
/// (exactly) or the JSON `{"result":"OK"}`.
pub fn popbill_accepts(status: u16, body: &[u8]) -> bool {
    if status != 200 {
        return false;
    }
    if body == b"OK" {
        return true;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => {
            m.len() == 1 && m.get("result").and_then(|v| v.as_str()) == Some("OK")
        }
        _ => false,
    }
}

/// A body as shown to people: quoted, escaped, cut at 200 characters.
pub fn shown_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut: String = text.chars().take(200).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("\"{}\"{more}", cut.escape_debug())
}

/// Where in a try time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Resolve,
    Connect,
    TlsHandshake,
    Answer,
    Body,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Resolve => "resolving the host name",
            Phase::Connect => "connecting",
            Phase::TlsHandshake => "in the TLS handshake",
            Phase::Answer => "waiting for the answer",
            Phase::Body => "reading the answer's body",
        })
    }
}

/// Why a try got no HTTP answer. Each names the problem the way one would
/// say it to whoever runs the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NameNotResolved(String),
    /// Nothing listens at the address.
    ConnectionRefused(SocketAddr),
    HostUnreachable(String),
    ConnectionReset,
    TimedOut(Phase),
    CertificateNotTrusted(String),
    HostnameMismatch(String),
    CertificateExpired(String),
    CertificateNotYetValid(String),
    CertificateRejected(String),
    NotTls,
    Tls(String),
    ClosedWithoutAnswer,
    NotHttp(String),
    Io(String),
}

impl Failure {
    /// A short, stable name (for logs, metrics, tests).
    pub fn name(&self) -> &'static str {
        match self {
            Failure::NameNotResolved(_) => "name not resolved",
            Failure::ConnectionRefused(_) => "connection refused",
            Failure::HostUnreachable(_) => "host unreachable",
            Failure::ConnectionReset => "connection reset",
            Failure::TimedOut(_) => "timed out",
            Failure::CertificateNotTrusted(_) => "certificate not trusted",
            Failure::HostnameMismatch(_) => "hostname mismatch",
            Failure::CertificateExpired(_) => "certificate expired",
            Failure::CertificateNotYetValid(_) => "certificate not yet valid",
            Failure::CertificateRejected(_) => "certificate rejected",
            Failure::NotTls => "not TLS",
            Failure::Tls(_) => "TLS handshake failed",
            Failure::ClosedWithoutAnswer => "closed without an answer",
            Failure::NotHttp(_) => "not an HTTP answer",
            Failure::Io(_) => "connection error",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Failure::NameNotResolved(d) => write!(f, "{name}: {d}"),
            Failure::ConnectionRefused(a) => {
                write!(f, "{name} by {a}: nothing listens on that address and port")
            }
            Failure::HostUnreachable(d) => write!(f, "{name}: {d}"),
            Failure::ConnectionReset => write!(f, "{name} by the receiver"),
            Failure::TimedOut(p) => write!(f, "{name} {p}"),
            Failure::CertificateNotTrusted(d) => write!(
                f,
                "{name} ({d}): the chain does not lead to a root CA POPBiLL would trust; send the \
                 full chain (leaf and intermediates), or for a private CA give it with --ca-file"
            ),
            Failure::HostnameMismatch(d) => write!(f, "{name}: {d}"),
            Failure::CertificateExpired(d)
            | Failure::CertificateNotYetValid(d)
            | Failure::CertificateRejected(d)
            | Failure::Tls(d)
            | Failure::NotHttp(d)
            | Failure::Io(d) => write!(f, "{name}: {d}"),
            Failure::NotTls => write!(
                f,
                "{name}: the server did not answer the TLS handshake with TLS (is it plain http://?)"
            ),
            Failure::ClosedWithoutAnswer => write!(
                f,
                "connection {name} (a TLS port spoken to in plain http://, or the receiver gave up)"
            ),
        }
    }
}

/// How the sender connects.
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// The whole try: connecting, TLS, sending, and reading the answer.
    pub timeout: Duration,
    /// PEM files of extra CAs to trust (private CAs), besides Mozilla's
    /// roots.
    pub ca_files: Vec<PathBuf>,
}

impl Default for SenderOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            ca_files: Vec::new(),
        }
    }
}

/// Sends deliveries to one URL the way POPBiLL does.
#[derive(Clone)]
pub struct Sender {
    target: Target,
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
}

impl Sender {
    pub fn new(url: &str, opts: SenderOptions) -> Result<Sender, String> {
        let target = Target::parse(url)?;
        let tls = if target.https {
            Some(tls_connector(&opts.ca_files)?)
        } else {
            None
        };
        Ok(Sender {
            target,
            tls,
            timeout: opts.timeout,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// One try, on a connection of its own.
    pub async fn try_once(&self, delivery: &Delivery) -> TryOutcome {
        let at = SystemTime::now();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut peer = None;
        let result = self.attempt(delivery, deadline, &mut peer).await;
        TryOutcome {
            at,
            elapsed: started.elapsed(),
            peer,
            result,
        }
    }

    async fn attempt(
        &self,
        delivery: &Delivery,
        deadline: tokio::time::Instant,
        peer: &mut Option<SocketAddr>,
    ) -> Result<Answer, Failure> {
        let t = &self.target;
        let addrs: Vec<SocketAddr> =
            match timeout_at(deadline, tokio::net::lookup_host((t.host.as_str(), t.port))).await {
                Err(_) => return Err(Failure::TimedOut(Phase::Resolve)),
                Ok(Err(e)) => return Err(Failure::NameNotResolved(format!("{}: {e}", t.host))),
                Ok(Ok(a)) => a.collect(),
            };
        let mut last = Failure::NameNotResolved(format!("{}: no address", t.host));
        let mut tcp = None;
        for addr in addrs {
            match timeout_at(deadline, TcpStream::connect(addr)).await {
                Err(_) => return Err(Failure::TimedOut(Phase::Connect)),
                Ok(Ok(s)) => {
                    *peer = Some(addr);
                    tcp = Some(s);
                    break;
                }
                Ok(Err(e)) => last = connect_failure(&e, addr),
            }
        }
        let tcp = tcp.ok_or(last)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => self.exchange(tcp, delivery, deadline).await,
            Some(connector) => {
                let name = ServerName::try_from(t.host.clone()).map_err(|e| {
                    Failure::Tls(format!("{}: not a valid server name: {e}", t.host))
                })?;
                let stream = match timeout_at(deadline, connector.connect(name, tcp)).await {
                    Err(_) => return Err(Failure::TimedOut(Phase::TlsHandshake)),
                    Ok(Err(e)) => return Err(tls_failure(&e)),
                    Ok(Ok(s)) => s,
                };
                self.exchange(stream, delivery, deadline).await
            }
        }
    }

    async fn exchange<S>(
        &self,
        io: S,
        delivery: &Delivery,
        deadline: tokio::time::Instant,
    ) -> Result<Answer, Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handshake = hyper::client::conn::http1::handshake(TokioIo::new(io));
        let (mut send, conn) = match timeout_at(deadline, handshake).await {
            Err(_) => return Err(Failure::TimedOut(Phase::Answer)),
            Ok(Err(e)) => return Err(hyper_failure(&e)),
            Ok(Ok(x)) => x,
        };
        let conn = tokio::spawn(conn);
        let result = async {
            let mut req = Request::builder()
                .method(Method::POST)
                .uri(self.target.path_and_query.as_str())
                .header(hyper::header::HOST, self.target.authority.as_str());
            for (k, v) in &delivery.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            if delivery.header("user-agent").is_none() {
                req = req.header(
                    hyper::header::USER_AGENT,
                    concat!("popbill-bridge-send/", env!("CARGO_PKG_VERSION")),
                );
            }
            let req = req
                .body(Full::new(delivery.body.clone()))
                .map_err(|e| Failure::Io(format!("cannot build the request: {e}")))?;
            let resp = match timeout_at(deadline, send.send_request(req)).await {
                Err(_) => return Err(Failure::TimedOut(Phase::Answer)),
                Ok(Err(e)) => return Err(hyper_failure(&e)),
                Ok(Ok(r)) => r,
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = match timeout_at(
                deadline,
                Limited::new(resp.into_body(), MAX_ANSWER_BYTES).collect(),
            )
            .await
            {
                Err(_) => return Err(Failure::TimedOut(Phase::Body)),
                Ok(Ok(c)) => c.to_bytes(),
                // Too long, or cut off: what POPBiLL would judge is not OK
                // either way; keep the status.
                Ok(Err(_)) => Bytes::from_static(b"<body cut off or longer than 64 KiB>"),
            };
            Ok(Answer {
                status,
                headers,
                body,
            })
        }
        .await;
        conn.abort();
        result
    }
}

fn tls_connector(ca_files: &[PathBuf]) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for f in ca_files {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(f)
            .map_err(|e| format!("--ca-file {}: {e}", f.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--ca-file {}: {e}", f.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-file {}: no PEM certificate in it",
                f.display()
            ));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("--ca-file {}: {e}", f.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

fn connect_failure(e: &std::io::Error, addr: SocketAddr) -> Failure {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => Failure::ConnectionRefused(addr),
        K::ConnectionReset | K::ConnectionAborted => Failure::ConnectionReset,
        K::TimedOut => Failure::TimedOut(Phase::Connect),
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
            Failure::HostUnreachable(format!("{addr}: {e}"))
        }
        _ => Failure::Io(format!("{addr}: {e}")),
    }
}

fn tls_failure(e: &std::io::Error) -> Failure {
    use rustls::CertificateError as C;
    let detail = e.to_string();
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::UnknownIssuer => Failure::CertificateNotTrusted("unknown issuer".into()),
            C::BadSignature | C::UnsupportedSignatureAlgorithmContext { .. } => {
                Failure::CertificateNotTrusted(detail)
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                Failure::HostnameMismatch(detail)
            }
            C::Expired | C::ExpiredContext { .. } => Failure::CertificateExpired(detail),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                Failure::CertificateNotYetValid(detail)
            }
            _ => Failure::CertificateRejected(detail),
        },
        Some(rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }) => {
            Failure::NotTls
        }
        Some(rustls::Error::AlertReceived(a)) => {
            Failure::Tls(format!("the server refused the handshake (alert {a:?})"))
        }
        Some(_) => Failure::Tls(detail),
        None => match e.kind() {
            std::io::ErrorKind::ConnectionReset => Failure::ConnectionReset,
            std::io::ErrorKind::UnexpectedEof => {
                Failure::Tls("the server closed the connection during the handshake".into())
            }
            _ => Failure::Tls(detail),
        },
    }
}

fn hyper_failure(e: &hyper::Error) -> Failure {
    if e.is_incomplete_message() {
        return Failure::ClosedWithoutAnswer;
    }
    if e.is_parse() {
        return Failure::NotHttp(format!(
            "{e} (an https:// server spoken to in plain http://?)"
        ));
    }
    if e.is_timeout() {
        return Failure::TimedOut(Phase::Answer);
    }
    // The underlying I/O error, if any, says more.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                    Failure::ConnectionReset
                }
                _ => Failure::Io(io.to_string()),
            };
        }
        source = s.source();
    }
    Failure::Io(e.to_string())
}

// ---------------------------------------------------------------------------
// Retries.

/// How often and how far apart to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Sends after the first one fails.
    pub retries: u32,
    /// Wait between the end of one try and the start of the next.
    pub interval: Duration,
}

impl RetryPolicy {
    /// POPBiLL's, as far as its documentation tells: 4 sends in total,
    /// 5 minutes apart.
    pub const POPBILL: RetryPolicy = RetryPolicy {
        retries: 3,
        interval: Duration::from_secs(300),
    };

    pub fn tries(&self) -> u32 {
        self.retries.saturating_add(1)
    }
}

/// What [`deliver`] tells after each try.
pub struct TryReport<'a> {
    /// 1-based.
    pub number: u32,
    pub of: u32,
    pub outcome: &'a TryOutcome,
    /// When another try follows: how long until it.
    pub next_in: Option<Duration>,
}

/// Tries until POPBiLL's rule is met or the retries are spent, calling
/// `each` after every try. Returns every try's outcome; the delivery
/// succeeded when the last one did.
pub async fn deliver(
    sender: &Sender,
    delivery: &Delivery,
    policy: RetryPolicy,
    mut each: impl FnMut(&TryReport<'_>),
) -> Vec<TryOutcome> {
    let of = policy.tries();
    let mut tries = Vec::new();
    for number in 1..=of {
        let outcome = sender.try_once(delivery).await;
        let done = outcome.succeeded() || number == of;
        each(&TryReport {
            number,
            of,
            outcome: &outcome,
            next_in: (!done).then_some(policy.interval),
        });
        tries.push(outcome);
        if done {
            break;
        }
        tokio::time::sleep(policy.interval).await;
    }
    tries
}

// ---------------------------------------------------------------------------
// The command.

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 500ms, 10s, 5m)"))
}

#[derive(Debug, clap::Args)]
#[command(
    about = "Send a sample POPBiLL delivery to a URL the way POPBiLL does, and tell what happened.",
    long_about = "Send a sample POPBiLL delivery to a callback URL the way POPBiLL does, to check a \
deployment end to end (TLS, credentials, allow-list, the bridge, Kafka).\n\n\
The delivery carries POPBiLL's headers (Pb-Webhook-Type, -MID, -Corpnum, -EventType, \
Content-Type) and a realistic body (--list shows the samples). A try succeeds only on status 200 \
with body OK or {\"result\":\"OK\"}; any other status or body, a connection or TLS error, or no \
answer within --timeout is a failure, and the delivery is sent again after --retry-interval, \
--retries times at most, as POPBiLL does. Each try is printed: time, status, body, duration, and \
connection or TLS problems by name (connection refused, certificate not trusted, hostname \
mismatch, timed out, ...).\n\n\
HTTPS trusts Mozilla's root certificates (the same on every machine), plus --ca-file.\n\n\
Exit status: 0 when a try succeeded, 1 when every try failed, 2 for a usage error.",
    after_help = "Examples:\n  popbill-bridge send --list\n  popbill-bridge send --url https://hooks.example.com/popbill/webhook --sample taxinvoice-issue --api-key \"$KEY\" --retries 0\n  popbill-bridge send --url http://127.0.0.1:8080/popbill/webhook --sample statement-issue --fresh-mid --retries 4 --retry-interval 5m"
)]
pub struct SendArgs {
    /// The callback URL, as registered with POPBiLL (http:// or https://).
    #[arg(long, value_name = "URL", required_unless_present = "list")]
    pub url: Option<String>,

    /// Which sample delivery to send (see --list).
    #[arg(long, value_name = "NAME", required_unless_present = "list")]
    pub sample: Option<String>,

    /// List the sample deliveries and exit.
    #[arg(long)]
    pub list: bool,

    /// HTTP Basic credentials, as turned on in POPBiLL's settings; replaces the sample's Authorization header.
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "POPBILL_SEND_BASIC",
        hide_env_values = true
    )]
    pub basic: Option<String>,

    /// API key (X-Api-Key), as turned on in POPBiLL's settings; replaces the sample's X-Api-Key header.
    #[arg(
        long,
        value_name = "KEY",
        env = "POPBILL_SEND_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,

    /// Sends after the first failed one (POPBiLL: 3, i.e. 4 sends in total). 0 sends once.
    #[arg(long, value_name = "N", default_value_t = RetryPolicy::POPBILL.retries)]
    pub retries: u32,

    /// Wait between a failed try and the next (POPBiLL: 5 minutes).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub retry_interval: Duration,

    /// No answer within this time is a failed try (connecting, TLS, sending and the answer together).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Send with this Pb-Webhook-MID instead of the sample's.
    #[arg(long, value_name = "MID", conflicts_with = "fresh_mid")]
    pub mid: Option<String>,

    /// Send with a new, unique Pb-Webhook-MID, so the receiver sees a new event rather than a copy of the sample's (the same MID on every retry, as POPBiLL does).
    #[arg(long)]
    pub fresh_mid: bool,

    /// An extra header, "Name: value" (a custom header POPBiLL was asked to add); repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// A PEM file of CA certificates to trust besides Mozilla's roots (a private CA); repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Vec<PathBuf>,
}

/// Lists the samples, one a line: name, webhook and event type, note.
pub fn list() -> String {
    let all = samples::all();
    let width = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for s in &all {
        let event = s.event_type().unwrap_or_default();
        let note = s
            .note
            .as_deref()
            .map(|n| format!("  ({n})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:width$}  {} {}{note}\n",
            s.name,
            s.webhook_type(),
            event
        ));
    }
    out
}

pub async fn run(args: SendArgs) -> ExitCode {
    if args.list {
        print!("{}", list());
        return ExitCode::SUCCESS;
    }
    match prepare(&args) {
        Ok((sender, delivery, sample)) => send(sender, delivery, &sample, &args).await,
        Err(e) => {
            eprintln!("popbill-bridge send: {e}");
            ExitCode::from(2)
        }
    }
}

fn prepare(args: &SendArgs) -> Result<(Sender, Delivery, Sample), String> {
    let (Some(url), Some(name)) = (&args.url, &args.sample) else {
        return Err("give --url and --sample (or --list)".into());
    };
    let sample = samples::find(name).ok_or_else(|| {
        format!(
            "no sample called {name:?}; these exist: {}",
            samples::all()
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let mut delivery = Delivery::from_sample(&sample);
    if let Some(b) = &args.basic {
        if !b.contains(':') {
            return Err("--basic takes user:pass".into());
        }
        delivery.set_header("Authorization", &basic_authorization(b));
    }
    if let Some(k) = &args.api_key {
        delivery.set_header("X-Api-Key", k);
    }
    if let Some(m) = &args.mid {
        delivery.set_header("Pb-Webhook-MID", m);
    } else if args.fresh_mid {
        delivery.set_header("Pb-Webhook-MID", &fresh_mid());
    }
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?}: expected \"Name: value\""))?;
        let (k, v) = (k.trim(), v.trim());
        hyper::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("--header {h:?}: {k:?} is not a header name"))?;
        hyper::header::HeaderValue::from_str(v)
            .map_err(|_| format!("--header {h:?}: the value is not a valid header value"))?;
        delivery.set_header(k, v);
    }
    let sender = Sender::new(
        url,
        SenderOptions {
            timeout: args.timeout,
            ca_files: args.ca_file.clone(),
        },
    )?;
    Ok((sender, delivery, sample))
}

async fn send(sender: Sender, delivery: Delivery, sample: &Sample, args: &SendArgs) -> ExitCode {
    let t = sender.target();
    println!(
        "sending {} ({} {}, MID {}) to {}",
        sample.name,
        sample.webhook_type(),
        sample.event_type().unwrap_or_else(|| "-".into()),
        delivery.mid().unwrap_or("-"),
        t.url
    );
    if !t.popbill_port() {
        println!(
            "note: POPBiLL delivers only to ports {}; a callback URL on port {} would not work with POPBiLL itself",
            POPBILL_PORTS
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            t.port
        );
    }
    let policy = RetryPolicy {
        retries: args.retries,
        interval: args.retry_interval,
    };
    let tries = deliver(&sender, &delivery, policy, |r| print!("{}", describe(r))).await;
    let n = tries.len();
    match tries.last() {
        Some(last) if last.succeeded() => {
            println!(
                "delivered: POPBiLL would count this delivery as done (try {n} of {})",
                policy.tries()
            );
            ExitCode::SUCCESS
        }
        _ => {
            if n == 1 {
                println!("not delivered: the try failed");
            } else {
                println!("not delivered: all {n} tries failed");
            }
            ExitCode::FAILURE
        }
    }
}

/// What one try looks like on the terminal.
pub fn describe(r: &TryReport<'_>) -> String {
    let o = r.outcome;
    let at = humantime::format_rfc3339_millis(o.at);
    let ms = o.elapsed.as_secs_f64() * 1000.0;
    let peer = o.peer.map(|p| format!(" {p}")).unwrap_or_default();
    let mut out = format!("try {}/{} at {at}{peer}: ", r.number, r.of);
    match &o.result {
        Ok(a) => {
            out.push_str(&format!(
                "{} {} in {ms:.0} ms, body {}",
                a.status,
                hyper::StatusCode::from_u16(a.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or(""),
                shown_body(&a.body)
            ));
            match a.problem() {
                None => out.push_str(" -> OK\n"),
                Some(p) => out.push_str(&format!(" -> FAILED: {p}\n")),
            }
        }
        Err(f) => out.push_str(&format!("FAILED after {ms:.0} ms: {f}\n")),
    }
    if let Some(next) = r.next_in {
        out.push_str(&format!(
            "  next try in {} (as POPBiLL would; Ctrl-C stops)\n",
            humantime::format_duration(next)
        ));
    }
    out
}

#[cfg(test)]
mod tests;
