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
fn a_credential_file_without_a_credential_is_refused_at_start() {
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
fn an_empty_api_key_never_matches_an_empty_header() {
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
fn a_reload_to_a_file_without_credentials_keeps_the_last_good_set() {
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
