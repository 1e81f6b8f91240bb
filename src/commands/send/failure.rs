//! Why a try got no HTTP answer, named the way one would say it to whoever
//! runs the receiver, and how connection, TLS and HTTP errors map to it.

use std::fmt;
use std::net::SocketAddr;

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

pub(super) fn connect_failure(e: &std::io::Error, addr: SocketAddr) -> Failure {
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

pub(super) fn tls_failure(e: &std::io::Error) -> Failure {
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

pub(super) fn hyper_failure(e: &hyper::Error) -> Failure {
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
