use super::*;

fn with_files(files: &[(&str, &std::path::Path)]) -> KafkaConfig {
    let mut cfg = KafkaConfig::default();
    for (p, f) in files {
        cfg.secret_files.insert(p.to_string(), f.to_path_buf());
    }
    cfg
}

#[test]
fn a_secret_file_becomes_its_property_without_the_final_newline_and_is_never_shown() {
    let dir = tempfile::tempdir().expect("dir");
    let f = dir.path().join("sasl-password");
    std::fs::write(&f, "s3cret-from-a-file\n").expect("write");
    let mut cfg = with_files(&[("sasl.password", &f)]);
    assert!(read_into(&mut cfg).is_empty());
    assert_eq!(
        cfg.properties.get("sasl.password").map(String::as_str),
        Some("s3cret-from-a-file")
    );
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("s3cret-from-a-file"), "{shown}");
    assert!(
        shown.contains("sasl-password"),
        "the file is named: {shown}"
    );
    // Any property read from a file is hidden, whatever its name.
    let g = dir.path().join("user");
    std::fs::write(&g, "bridge-user").expect("write");
    let mut cfg = with_files(&[("sasl.username", &g)]);
    assert!(read_into(&mut cfg).is_empty());
    assert!(!format!("{cfg:?}").contains("bridge-user"));
}

#[test]
fn a_missing_or_empty_secret_file_or_a_property_set_twice_is_refused_naming_the_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    let absent = dir.path().join("absent");
    let mut cfg = with_files(&[("sasl.password", &absent), ("ssl.key.password", &empty)]);
    cfg.secret_files
        .insert("sasl.username".into(), empty.clone());
    cfg.properties.insert("sasl.username".into(), "x".into());
    let errs = read_into(&mut cfg).join("\n");
    assert!(
        errs.contains("kafka.secret_files.\"sasl.password\": cannot read"),
        "{errs}"
    );
    assert!(
        errs.contains("kafka.secret_files.\"ssl.key.password\":") && errs.contains("is empty"),
        "{errs}"
    );
    assert!(errs.contains("are both set: keep one"), "{errs}");
}

#[tokio::test]
async fn a_changed_secret_file_asks_for_a_restart_naming_the_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let f = dir.path().join("sasl-password");
    std::fs::write(&f, "old-s3cret").expect("write");
    let cfg = with_files(&[("sasl.password", &f)]);
    let events = Arc::new(ClientEvents::default());
    let (_stop, signal) = crate::signal::signal();
    spawn_watch(&cfg, Duration::from_millis(20), events.clone(), signal);
    tokio::time::sleep(Duration::from_millis(60)).await;
    std::fs::write(&f, "new-s3cret").expect("rotate");
    let reason = tokio::time::timeout(Duration::from_secs(5), events.wait_restart())
        .await
        .expect("a restart was asked for");
    assert!(
        reason.contains("kafka.secret_files.\"sasl.password\""),
        "{reason}"
    );
    assert!(
        !reason.contains("new") || !reason.contains("old"),
        "{reason}"
    );
}
