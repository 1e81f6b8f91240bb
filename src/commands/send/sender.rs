//! One try on a connection of its own, as a fresh POPBiLL delivery would:
//! resolve, connect, TLS (Mozilla's roots plus extra CAs), one POST, the
//! answer read within the timeout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use super::answer::{Answer, TryOutcome};
use super::delivery::Delivery;
use super::failure::{Failure, Phase, connect_failure, hyper_failure, tls_failure};
use super::target::Target;

/// At most this much of an answer's body is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

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

    pub(crate) fn target(&self) -> &Target {
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
