//! `scripts/test.sh` against the tests: the tests it skips when the broker
//! is not the one of `scripts/kafka.sh` are exactly those marked as needing
//! that broker. No broker needed.

use std::collections::BTreeSet;
use std::path::Path;

/// The mark of a test that needs the broker of `scripts/kafka.sh`.
const KAFKA_SH_MARK: &str = r#"#[ignore = "needs the Kafka broker of scripts/kafka.sh"]"#;

/// `module::test` of every test function of `tests/it/*.rs` that carries
/// `mark` among its attributes.
fn marked(mark: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("tests/it") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let module = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let text = std::fs::read_to_string(&path).expect("read");
        let mut in_mark = false;
        for line in text.lines().map(str::trim) {
            if line == mark {
                in_mark = true;
            } else if in_mark && !line.starts_with("#[") {
                let name = line
                    .trim_start_matches("async ")
                    .strip_prefix("fn ")
                    .and_then(|rest| rest.split('(').next())
                    .unwrap_or_else(|| panic!("{}: {mark} on {line:?}", path.display()));
                out.insert(format!("{module}::{name}"));
                in_mark = false;
            }
        }
    }
    out
}

/// The names in the `kafka_sh_tests=( ... )` list of `scripts/test.sh`.
fn skipped_by_test_sh() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test.sh");
    let text = std::fs::read_to_string(&path).expect("scripts/test.sh");
    text.lines()
        .skip_while(|l| l.trim() != "kafka_sh_tests=(")
        .skip(1)
        .take_while(|l| l.trim() != ")")
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn test_sh_skips_exactly_the_tests_that_need_the_broker_of_kafka_sh() {
    let marked = marked(KAFKA_SH_MARK);
    assert!(!marked.is_empty(), "no test carries {KAFKA_SH_MARK}");
    assert_eq!(
        skipped_by_test_sh(),
        marked,
        "scripts/test.sh's kafka_sh_tests differ from the tests marked {KAFKA_SH_MARK}"
    );
}
