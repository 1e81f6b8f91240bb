use super::*;

#[test]
fn a_file_replaced_with_the_same_modification_time_has_another_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("keys");
    std::fs::write(&f, "old-key\n").expect("write");
    let mtime = std::fs::metadata(&f)
        .and_then(|m| m.modified())
        .expect("mtime");
    let before = file_digests([f.as_path()]);
    std::fs::write(&f, "new-key\n").expect("write");
    // As `cp -p` leaves it: the old modification time.
    std::fs::File::options()
        .write(true)
        .open(&f)
        .and_then(|file| file.set_modified(mtime))
        .expect("mtime");
    assert_ne!(file_digests([f.as_path()]), before);
}

#[test]
fn the_same_content_has_the_same_digest_and_a_missing_file_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, "k").expect("write");
    std::fs::write(&b, "k").expect("write");
    let d = file_digests([a.as_path(), b.as_path(), dir.path().join("c").as_path()]);
    assert_eq!(d[0], d[1]);
    assert!(d[0].is_some());
    assert_eq!(d[2], None);
}
