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

use crate::http::file_digest::{FileDigest, file_digests};

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
    pub basic_files: Vec<PathBuf>,
    /// Valid `X-Api-Key` values.
    #[serde(deserialize_with = "crate::deserialize::string_or_list")]
    pub api_keys: Vec<String>,
    /// Files with one API key per line; re-read when they change.
    pub api_key_files: Vec<PathBuf>,
}

impl AuthConfig {
    /// True when any credential setting is given.
    pub fn is_configured(&self) -> bool {
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
    pub fn counting_reload_failures(mut self, counter: IntCounter) -> Auth {
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
    pub fn reload_if_changed(&self) {
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

    pub fn has_files(&self) -> bool {
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

/// Standard base64 (RFC 4648, with padding), as HTTP Basic uses. Small
/// enough to keep here rather than add a crate for one call.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, chunk) in b.chunks(4).enumerate() {
        let last = i == b.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use std::time::SystemTime;

    fn cfg(basic: &[&str], keys: &[&str]) -> AuthConfig {
        AuthConfig {
            basic: basic.iter().map(|s| s.to_string()).collect(),
            api_keys: keys.iter().map(|s| s.to_string()).collect(),
            ..AuthConfig::default()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn base64_decodes_what_basic_sends() {
        assert_eq!(
            base64_decode("cG9wYmlsbDpzM2NyZXQ=").as_deref(),
            Some(&b"popbill:s3cret"[..])
        );
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("YWJj").as_deref(), Some(&b"abc"[..]));
        for bad in ["", "Y", "YQ=", "Y===", "YQ==YQ==", "!!!!"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn nothing_configured_checks_nothing() {
        let a = Auth::new(cfg(&[], &[])).expect("auth");
        assert_eq!(a.check(&headers(&[])), Credentials::NotConfigured);
    }

    #[test]
    fn basic_right_wrong_missing_and_rotated() {
        let a = Auth::new(cfg(&["popbill:s3cret", "popbill:n3w"], &[])).expect("auth");
        let ok = headers(&[("authorization", "Basic cG9wYmlsbDpzM2NyZXQ=")]);
        assert_eq!(a.check(&ok), Credentials::Verified);
        // popbill:n3w — the rotated credential is valid at the same time.
        let rotated = headers(&[("authorization", "Basic cG9wYmlsbDpuM3c=")]);
        assert_eq!(a.check(&rotated), Credentials::Verified);
        let wrong = headers(&[("authorization", "Basic d3Jvbmc6d3Jvbmc=")]);
        assert_eq!(a.check(&wrong), Credentials::Denied { basic: true });
        assert_eq!(a.check(&headers(&[])), Credentials::Denied { basic: true });
        let bearer = headers(&[("authorization", "Bearer cG9wYmlsbDpzM2NyZXQ=")]);
        assert_eq!(a.check(&bearer), Credentials::Denied { basic: true });
    }

    #[test]
    fn api_key_and_both_mechanisms() {
        let a = Auth::new(cfg(&[], &["k1", "k2"])).expect("auth");
        assert_eq!(
            a.check(&headers(&[("x-api-key", "k2")])),
            Credentials::Verified
        );
        assert_eq!(
            a.check(&headers(&[("x-api-key", "k3")])),
            Credentials::Denied { basic: false }
        );
        let both = Auth::new(cfg(&["popbill:s3cret"], &["k1"])).expect("auth");
        let only_key = headers(&[("x-api-key", "k1")]);
        assert_eq!(both.check(&only_key), Credentials::Denied { basic: true });
        let all = headers(&[
            ("x-api-key", "k1"),
            ("authorization", "Basic cG9wYmlsbDpzM2NyZXQ="),
        ]);
        assert_eq!(both.check(&all), Credentials::Verified);
    }

    #[test]
    fn files_are_read_and_reloaded_when_they_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("keys");
        std::fs::write(&f, "# rotated monthly\nold-key\n").expect("write");
        let a = Auth::new(AuthConfig {
            api_key_files: vec![f.clone()],
            ..AuthConfig::default()
        })
        .expect("auth");
        assert_eq!(
            a.check(&headers(&[("x-api-key", "old-key")])),
            Credentials::Verified
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&f, "new-key\n").expect("write");
        let t = SystemTime::now() + std::time::Duration::from_secs(5);
        let file = std::fs::File::options().write(true).open(&f).expect("open");
        file.set_modified(t).expect("mtime");
        a.reload_if_changed();
        assert_eq!(
            a.check(&headers(&[("x-api-key", "new-key")])),
            Credentials::Verified
        );
        assert_eq!(
            a.check(&headers(&[("x-api-key", "old-key")])),
            Credentials::Denied { basic: false }
        );
    }

    fn bump_mtime(f: &Path, secs: u64) {
        let t = SystemTime::now() + std::time::Duration::from_secs(secs);
        let file = std::fs::File::options().write(true).open(f).expect("open");
        file.set_modified(t).expect("mtime");
    }

    #[test]
    fn item7_a_credential_file_without_a_credential_is_refused_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, text) in [
            "",
            "\n\n",
            "# keys are rotated monthly\n#old-key\n",
            "   \n",
        ]
        .iter()
        .enumerate()
        {
            let f = dir.path().join(format!("keys-{i}"));
            std::fs::write(&f, text).expect("write");
            for cfg in [
                AuthConfig {
                    api_key_files: vec![f.clone()],
                    ..AuthConfig::default()
                },
                AuthConfig {
                    basic_files: vec![f.clone()],
                    ..AuthConfig::default()
                },
            ] {
                let err = Auth::new(cfg).err().expect("refused").join("; ");
                assert!(err.contains(&f.display().to_string()), "{err}");
            }
        }
    }

    #[test]
    fn item7_an_empty_api_key_never_matches_an_empty_header() {
        // Refused at start; and were it ever loaded, it would match nothing.
        match Auth::new(cfg(&[], &[""])) {
            Err(e) => assert!(e.join("; ").contains("auth.api_keys"), "{e:?}"),
            Ok(a) => assert_eq!(
                a.check(&headers(&[("x-api-key", "")])),
                Credentials::Denied { basic: false }
            ),
        }
        let a = Auth::new(cfg(&[], &["k"])).expect("auth");
        assert_eq!(
            a.check(&headers(&[("x-api-key", "")])),
            Credentials::Denied { basic: false }
        );
    }

    #[test]
    fn item7_a_reload_to_a_file_without_credentials_keeps_the_last_good_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("keys");
        std::fs::write(&f, "good-key\n").expect("write");
        let failures = IntCounter::new("failures", "test").expect("counter");
        let a = Auth::new(AuthConfig {
            api_key_files: vec![f.clone()],
            ..AuthConfig::default()
        })
        .expect("auth")
        .counting_reload_failures(failures.clone());
        std::fs::write(&f, "# emptied by mistake\n").expect("write");
        bump_mtime(&f, 5);
        a.reload_if_changed();
        assert_eq!(
            a.check(&headers(&[("x-api-key", "good-key")])),
            Credentials::Verified
        );
        assert_eq!(a.check(&headers(&[])), Credentials::Denied { basic: false });
        // Counted once, retried at every check until fixed.
        a.reload_if_changed();
        assert_eq!(failures.get(), 1);
        std::fs::write(&f, "new-key\n").expect("write");
        bump_mtime(&f, 10);
        a.reload_if_changed();
        assert_eq!(
            a.check(&headers(&[("x-api-key", "new-key")])),
            Credentials::Verified
        );
        std::fs::write(&f, "").expect("write");
        bump_mtime(&f, 15);
        a.reload_if_changed();
        assert_eq!(failures.get(), 2);
        assert_eq!(
            a.check(&headers(&[("x-api-key", "new-key")])),
            Credentials::Verified
        );
    }

    #[test]
    fn a_basic_file_line_without_colon_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("basic");
        std::fs::write(&f, "justapassword\n").expect("write");
        let err = Auth::new(AuthConfig {
            basic_files: vec![f],
            ..AuthConfig::default()
        })
        .err()
        .expect("refused")
        .join("; ");
        assert!(err.contains("user:password"), "{err}");
    }

    /// Issue #23: a key file saved by Notepad (a byte-order mark, CRLF, and
    /// trailing blanks) started without a word, and its first key, with
    /// the mark glued to it, never matched. Every key must, whatever the
    /// line ends and blanks.
    #[test]
    fn every_key_of_a_file_matches_whatever_its_byte_order_mark_line_ends_and_blanks() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, text) in [
            "\u{feff}key-1\r\nkey-2 \r\n\tkey-3\t\r\n",
            "\u{feff}key-1\nkey-2\n key-3 \n",
            "key-1\rkey-2\rkey-3\r",
            "key-1\r\n\r\n# comment\r\nkey-2\u{a0}\nkey-3",
            "\u{feff}  key-1\u{3000}\r\nkey-2\r\nkey-3",
        ]
        .iter()
        .enumerate()
        {
            let f = dir.path().join(format!("keys-{i}"));
            std::fs::write(&f, text).expect("write");
            let a = Auth::new(AuthConfig {
                api_key_files: vec![f],
                ..AuthConfig::default()
            })
            .expect("auth");
            for key in ["key-1", "key-2", "key-3"] {
                assert_eq!(
                    a.check(&headers(&[("x-api-key", key)])),
                    Credentials::Verified,
                    "{key} of {text:?}"
                );
            }
            assert_eq!(
                a.check(&headers(&[("x-api-key", "\u{feff}key-1")])),
                Credentials::Denied { basic: false },
                "the mark is not part of the key"
            );
        }
    }

    /// Issue #23: a file replaced with its old modification time (`cp -p`,
    /// `rsync -t`, `tar`) was never reloaded: the new key got 401 and the
    /// old one still worked.
    #[test]
    fn a_credential_file_replaced_with_its_old_modification_time_is_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("keys");
        std::fs::write(&f, "old-key\n").expect("write");
        let a = Auth::new(AuthConfig {
            api_key_files: vec![f.clone()],
            ..AuthConfig::default()
        })
        .expect("auth");
        let mtime = std::fs::metadata(&f)
            .and_then(|m| m.modified())
            .expect("mtime");
        std::fs::write(&f, "new-key\n").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&f)
            .and_then(|file| file.set_modified(mtime))
            .expect("mtime");
        a.reload_if_changed();
        assert_eq!(
            a.check(&headers(&[("x-api-key", "new-key")])),
            Credentials::Verified
        );
        assert_eq!(
            a.check(&headers(&[("x-api-key", "old-key")])),
            Credentials::Denied { basic: false }
        );
    }
}
