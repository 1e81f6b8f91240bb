//! Who may deliver: POPBiLL's optional HTTP Basic and `X-Api-Key`.
//!
//! POPBiLL signs nothing, so these shared secrets (with the source-address
//! allow-list in [`crate::http::access`]) are all a receiver has. Each mechanism
//! is optional; when configured it is required. Several credentials may be
//! valid at once, so a secret can be rotated without downtime: add the new
//! one, switch POPBiLL over, remove the old one. Credentials come from the
//! configuration or from files (Kubernetes Secret mounts), and files are
//! re-read when they change.
//!
//! A setting that yields no credential (an empty entry, a file that is
//! empty or holds only comments) is an error, never "authentication off":
//! at start-up the bridge refuses to start, and on reload it keeps the last
//! good credentials, logs an error and counts
//! `popbill_bridge_auth_reload_failures_total`.
//!
//! Comparison is constant-time: both sides are hashed to SHA-256 and the
//! digests compared with `subtle`, against every configured credential
//! without stopping at a match, so neither the length nor the position of
//! a valid secret shows in the timing. The secrets never reach a log line,
//! a metric, a Kafka header or an error body.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HeaderName};
use prometheus::IntCounter;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{error, info};

use crate::file_digest::{FileDigest, file_digests};

/// Credentials POPBiLL must present. Each list may also be given as one
/// comma-separated string. An empty entry, or a file without a credential,
/// is an error rather than "no credential": a setting that quietly yields
/// nothing would turn authentication off.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Valid HTTP Basic credentials, `user:password`.
    #[serde(deserialize_with = "crate::deserialize::string_or_list")]
    pub basic: Vec<String>,
    /// Files with one `user:password` per line (Kubernetes Secret mounts);
    /// re-read when they change.
    pub(crate) basic_files: Vec<PathBuf>,
    /// Valid `X-Api-Key` values.
    #[serde(deserialize_with = "crate::deserialize::string_or_list")]
    pub api_keys: Vec<String>,
    /// Files with one API key per line; re-read when they change.
    pub api_key_files: Vec<PathBuf>,
}

impl AuthConfig {
    /// True when any credential setting is given.
    pub(crate) fn is_configured(&self) -> bool {
        !(self.basic.is_empty()
            && self.basic_files.is_empty()
            && self.api_keys.is_empty()
            && self.api_key_files.is_empty())
    }

    /// What is wrong with the inline settings (files are read by
    /// [`crate::http::auth::Auth`]). Never shows a secret.
    pub fn problems(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let empty = |what: &str| {
            format!(
                "{what} has an empty entry: it would accept an empty credential; \
                 remove the entry or give the value (check the variable is set)"
            )
        };
        if self.basic.iter().any(|b| b.trim().is_empty()) {
            errs.push(empty("auth.basic"));
        } else if self.basic.iter().any(|b| !b.contains(':')) {
            errs.push("auth.basic: every entry must be user:password".into());
        } else if self
            .basic
            .iter()
            .any(|b| b.split_once(':').is_some_and(|(_, pw)| pw.is_empty()))
        {
            errs.push("auth.basic: an entry has an empty password; give user:password".into());
        }
        if self.api_keys.iter().any(|k| k.trim().is_empty()) {
            errs.push(empty("auth.api_keys"));
        }
        for (what, files) in [
            ("auth.basic_files", &self.basic_files),
            ("auth.api_key_files", &self.api_key_files),
        ] {
            if files.iter().any(|f| f.as_os_str().is_empty()) {
                errs.push(format!(
                    "{what} has an empty entry: remove it or give the file's path"
                ));
            }
        }
        errs
    }
}

impl fmt::Debug for AuthConfig {
    // Secrets are counted, never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("basic", &format!("<{} redacted>", self.basic.len()))
            .field("basic_files", &self.basic_files)
            .field("api_keys", &format!("<{} redacted>", self.api_keys.len()))
            .field("api_key_files", &self.api_key_files)
            .finish()
    }
}

static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Outcome of the credential check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// No mechanism is configured: nothing was checked.
    NotConfigured,
    /// Every configured mechanism passed.
    Verified,
    /// A configured mechanism failed; `basic` tells whether Basic is one of
    /// them (the answer then carries `WWW-Authenticate`).
    Denied { basic: bool },
}

type Secret = [u8; 32];

#[derive(Default)]
struct Secrets {
    basic: Vec<Secret>,
    api_keys: Vec<Secret>,
}

pub struct Auth {
    cfg: AuthConfig,
    secrets: RwLock<Secrets>,
    /// Content digests of the credential files as last loaded.
    seen: RwLock<Vec<FileDigest>>,
    /// A reload failed and no reload succeeded since: the failure was
    /// logged and counted once, and is retried every interval (a file
    /// caught half-written recovers without another change).
    failing: AtomicBool,
    /// `popbill_bridge_auth_reload_failures_total`, once wired.
    reload_failures: IntCounter,
}

fn digest(s: &[u8]) -> Secret {
    Sha256::digest(s).into()
}

impl Auth {
    /// Checks the section and loads the credentials; every problem at once
    /// (an empty entry, a missing, unreadable or empty file). Later, a bad
    /// reload keeps the previous credentials.
    pub fn new(cfg: AuthConfig) -> Result<Auth, Vec<String>> {
        let mut errs = cfg.problems();
        for f in cfg.basic_files.iter().chain(&cfg.api_key_files) {
            if !f.is_file() {
                errs.push(format!(
                    "auth: credential file {} does not exist",
                    f.display()
                ));
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        // A stand-alone counter until `counting_reload_failures` gives the
        // registered one; the name is a valid constant.
        let reload_failures = IntCounter::new("auth_reload_failures", "unregistered")
            .map_err(|e| vec![e.to_string()])?;
        let auth = Auth {
            secrets: RwLock::new(Secrets::default()),
            seen: RwLock::new(Vec::new()),
            failing: AtomicBool::new(false),
            reload_failures,
            cfg,
        };
        auth.load().map_err(|e| vec![format!("auth: {e}")])?;
        Ok(auth)
    }

    /// Counts failed reloads on `counter`.
    pub(crate) fn counting_reload_failures(mut self, counter: IntCounter) -> Auth {
        self.reload_failures = counter;
        self
    }

    fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.cfg
            .basic_files
            .iter()
            .chain(self.cfg.api_key_files.iter())
    }

    fn load(&self) -> Result<(), String> {
        let problems = self.cfg.problems();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let mut basic: Vec<Secret> = self
            .cfg
            .basic
            .iter()
            .map(|s| digest(s.as_bytes()))
            .collect();
        let mut api_keys: Vec<Secret> = self
            .cfg
            .api_keys
            .iter()
            .map(|s| digest(s.as_bytes()))
            .collect();
        for f in &self.cfg.basic_files {
            for line in read_credentials(f)? {
                match line.split_once(':') {
                    Some((_, password)) if !password.is_empty() => {}
                    _ => {
                        return Err(format!(
                            "{}: every line must be user:password with a password \
                             (a line without one found)",
                            f.display()
                        ));
                    }
                }
                basic.push(digest(line.as_bytes()));
            }
        }
        for f in &self.cfg.api_key_files {
            api_keys.extend(read_credentials(f)?.iter().map(|l| digest(l.as_bytes())));
        }
        let seen = file_digests(self.files().map(PathBuf::as_path));
        if let Ok(mut s) = self.secrets.write() {
            *s = Secrets { basic, api_keys };
        }
        if let Ok(mut s) = self.seen.write() {
            *s = seen;
        }
        Ok(())
    }

    /// Re-reads the credential files if any changed. Called periodically.
    pub(crate) fn reload_if_changed(&self) {
        // By content: a file replaced with its old modification time
        // (`cp -p`, `rsync -t`, `tar`) is a change too.
        let now = file_digests(self.files().map(PathBuf::as_path));
        let changed = self.seen.read().map(|s| *s != now).unwrap_or(false);
        if !changed {
            return;
        }
        match self.load() {
            Ok(()) => {
                self.failing.store(false, Ordering::Relaxed);
                info!("credential files changed; reloaded")
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    self.reload_failures.inc();
                    error!(error = %e, "credential files changed but could not be loaded; keeping the previous credentials until they are fixed");
                }
            }
        }
    }

    pub(crate) fn has_files(&self) -> bool {
        self.files().next().is_some()
    }

    pub fn check(&self, headers: &HeaderMap) -> Credentials {
        let Ok(s) = self.secrets.read() else {
            return Credentials::Denied { basic: false };
        };
        let (want_basic, want_key) = (!s.basic.is_empty(), !s.api_keys.is_empty());
        if !want_basic && !want_key {
            return Credentials::NotConfigured;
        }
        let basic_ok =
            !want_basic || basic_credential(headers).is_some_and(|c| matches_any(&s.basic, &c));
        // An empty key is never a credential, whatever was loaded.
        let key_ok = !want_key
            || headers
                .get(&X_API_KEY)
                .is_some_and(|v| !v.is_empty() && matches_any(&s.api_keys, v.as_bytes()));
        if basic_ok && key_ok {
            Credentials::Verified
        } else {
            Credentials::Denied { basic: want_basic }
        }
    }
}

/// The decoded `user:password` of an `Authorization: Basic` header.
fn basic_credential(headers: &HeaderMap) -> Option<Vec<u8>> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    base64_decode(b64.trim())
}

/// Compares against every secret, never stopping early.
fn matches_any(secrets: &[Secret], candidate: &[u8]) -> bool {
    let d = digest(candidate);
    let mut any = subtle::Choice::from(0);
    for s in secrets {
        any |= s.ct_eq(&d);
    }
    any.into()
}

/// The credentials of a file: its lines (LF, CRLF or CR; a leading UTF-8
/// byte-order mark dropped), trimmed, without blank lines and
/// `#` comments. A file with none is an error: configured and empty is a
/// mistake (a Secret key mounted empty, a file cleared by accident), not a
/// wish to let everyone in.
fn read_credentials(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // A file saved by Notepad starts with a byte-order mark, which would
    // otherwise stick to the first credential.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<String> = text
        // LF, CRLF, and a lone CR (old Mac editors) all end a line.
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        return Err(format!(
            "{} holds no credential (it is empty or only comments): put the credentials in it, \
             or remove it from the configuration",
            path.display()
        ));
    }
    Ok(lines)
}

/// Standard base64 (RFC 4648, with padding), as HTTP Basic uses; nothing
/// for an empty value.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if s.is_empty() {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests;
