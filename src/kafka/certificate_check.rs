//! Why a broker's certificate is refused, in words that name the fix.
//!
//! librdkafka reports every certificate it cannot verify the same way:
//! "certificate verify failed", with a hint to check `ssl.ca.location`. That
//! hint is wrong when the CA is right and the certificate does not name the
//! host the bridge connected to, or has expired (issue #22). When librdkafka
//! says so, the bridge repeats the handshake with the first bootstrap broker
//! itself (rustls, the same CA file, the same host name) and names what it
//! finds: the names the certificate lists, its expiry, or the CA.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::{CertificateError, Error as TlsError};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::kafka::KafkaConfig;

/// The broker a certificate check connects to, and what it trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateCheck {
    host: String,
    port: u16,
    /// `ssl.ca.location`; none: the system's (here: webpki's) roots.
    ca_file: Option<PathBuf>,
}

impl CertificateCheck {
    /// The first bootstrap broker of `cfg`, when the bridge talks TLS to
    /// Kafka and checks the broker's name (librdkafka's default).
    pub(crate) fn of(cfg: &KafkaConfig) -> Option<CertificateCheck> {
        let property = |k: &str| cfg.properties.get(k).map(String::as_str);
        let protocol = property("security.protocol")?.to_ascii_uppercase();
        if protocol != "SSL" && protocol != "SASL_SSL" {
            return None;
        }
        if property("ssl.endpoint.identification.algorithm") == Some("none") {
            return None;
        }
        let first = cfg.brokers.split(',').next()?.trim();
        let first = first.rsplit_once("://").map_or(first, |(_, b)| b);
        let (host, port) = first.rsplit_once(':')?;
        Some(CertificateCheck {
            host: host.trim_matches(['[', ']']).to_string(),
            port: port.parse().ok()?,
            ca_file: property("ssl.ca.location").map(PathBuf::from),
        })
    }

    /// The handshake with the broker, as far as its certificate: `None`
    /// when the certificate is accepted (or the check itself could not be
    /// made), else what is wrong and how to fix it.
    pub(crate) async fn run(&self, within: Duration) -> Option<String> {
        let connector = self.connector()?;
        let name = ServerName::try_from(self.host.clone()).ok()?;
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .ok()?;
            match connector.connect(name, tcp).await {
                Ok(_) => None,
                Err(e) => e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<TlsError>())
                    .and_then(|e| self.describe(e)),
            }
        };
        tokio::time::timeout(within, attempt).await.ok().flatten()
    }

    fn connector(&self) -> Option<tokio_rustls::TlsConnector> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(f) => {
                for c in CertificateDer::pem_file_iter(f).ok()? {
                    roots.add(c.ok()?).ok()?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Some(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
    }

    /// What a refused certificate means here, naming the fix.
    fn describe(&self, e: &TlsError) -> Option<String> {
        let TlsError::InvalidCertificate(e) = e else {
            return None;
        };
        let at = format!("{}:{}", self.host, self.port);
        let ca = self
            .ca_file
            .as_ref()
            .map_or("the system's CAs".to_string(), |f| {
                format!("ssl.ca.location ({})", f.display())
            });
        Some(match e {
            CertificateError::NotValidForName => format!(
                "the certificate of the broker at {at} does not name {host:?}, the host the bridge connected to: put a name the certificate lists in kafka.brokers (and the brokers' advertised.listeners), or reissue it with {host:?} in its subjectAltName",
                host = self.host
            ),
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the certificate of the broker at {at} does not name {host:?}, the host the bridge connected to; it names {names}: put one of those in kafka.brokers (and the brokers' advertised.listeners), or reissue it with {host:?} in its subjectAltName",
                host = self.host,
                names = presented
                    .iter()
                    .map(|n| plain_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "the certificate of the broker at {at} has expired: renew the brokers' certificates"
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "the certificate of the broker at {at} is not valid yet: check the clocks, or the certificate's notBefore"
            ),
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the certificate of the broker at {at} is not signed by a CA in {ca}: point ssl.ca.location at the CA that issued the brokers' certificates"
            ),
            other => format!("the certificate of the broker at {at} is refused: {other}"),
        })
    }
}

/// A name as webpki presents it (`DnsName("kafka-0")`, `IpAddress(..)`),
/// as an operator writes it.
fn plain_name(presented: &str) -> &str {
    let inner = presented
        .strip_prefix("DnsName(")
        .or_else(|| presented.strip_prefix("IpAddress("))
        .and_then(|n| n.strip_suffix(')'))
        .unwrap_or(presented);
    inner.trim_matches('"')
}

#[cfg(test)]
mod tests;
