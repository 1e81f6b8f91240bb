//! Optional TLS on the webhook port (rustls), for running without an
//! ingress in front. POPBiLL counts a TLS error as a failed delivery, so the
//! certificate must be valid and its chain complete. The files are
//! re-read when they change (e.g. cert-manager renewing a Secret), without
//! a restart; a bad new pair is logged and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::file_digest::{FileDigest, file_digests};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_file`, the webhook port speaks TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// The acceptor, when TLS is configured; every problem at once.
    pub fn build(&self) -> Result<Option<Tls>, Vec<String>> {
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => {
                let missing: Vec<String> = [c, k]
                    .into_iter()
                    .filter(|f| !f.is_file())
                    .map(|f| format!("tls: {} does not exist", f.display()))
                    .collect();
                if !missing.is_empty() {
                    return Err(missing);
                }
                Tls::new(c, k)
                    .map(Some)
                    .map_err(|e| vec![format!("tls: {e}")])
            }
            (None, None) => Ok(None),
            _ => Err(vec![
                "tls: set both cert_file and key_file, or neither".into(),
            ]),
        }
    }
}

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<TlsAcceptor>,
    /// Content digests of the pair as last loaded (by content: see
    /// [`crate::file_digest`]). A pair that failed to load is not
    /// marked seen, so it is tried again every interval: a key caught
    /// half-written is picked up once complete, even with the same
    /// modification time.
    seen: RwLock<Vec<FileDigest>>,
    /// The content of a pair that failed to load, logged once.
    failed: RwLock<Vec<FileDigest>>,
}

fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not fit together: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

impl Tls {
    pub fn new(cert: &Path, key: &Path) -> Result<Tls, String> {
        let cfg = load(cert, key)?;
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            acceptor: RwLock::new(TlsAcceptor::from(cfg)),
            seen: RwLock::new(file_digests([cert, key])),
            failed: RwLock::new(Vec::new()),
        })
    }

    pub(crate) fn acceptor(&self) -> Option<TlsAcceptor> {
        self.acceptor.read().ok().map(|a| a.clone())
    }

    pub(crate) fn reload_if_changed(&self) {
        let now = file_digests([self.cert.as_path(), self.key.as_path()]);
        if self.seen.read().map(|s| *s == now).unwrap_or(true) {
            return;
        }
        match load(&self.cert, &self.key) {
            Ok(cfg) => {
                if let Ok(mut a) = self.acceptor.write() {
                    *a = TlsAcceptor::from(cfg);
                }
                if let Ok(mut s) = self.seen.write() {
                    *s = now;
                }
                info!(cert = %self.cert.display(), "TLS certificate changed; reloaded");
            }
            Err(e) => {
                // Not marked seen: tried again next interval. Said once
                // per failing content, not every interval.
                let new = self.failed.write().map(|mut f| {
                    let new = *f != now;
                    *f = now;
                    new
                });
                if new.unwrap_or(true) {
                    warn!(error = %e, "TLS certificate changed but could not be loaded; keeping the previous one and trying again every limits.reload_interval")
                }
            }
        }
    }
}
