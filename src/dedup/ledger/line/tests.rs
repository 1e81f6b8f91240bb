use super::*;
use std::fmt::Write as _;

#[test]
fn lines_are_written_as_the_format_says() {
    for (identity, body, partition, offset, id) in [
        (0u128, 0u64, 0i32, 0i64, "m-1"),
        (1, 2, 3, 42, "content:ab cd"),
        (u128::MAX, u64::MAX, i32::MAX, i64::MAX, "x"),
        (
            0x0123_4567_89ab_cdef,
            0xfedc_ba98,
            7,
            1_000_000_007,
            "sha256:00",
        ),
    ] {
        let e = Entry {
            claim: Claim { identity, body },
            id: id.into(),
            topic: "popbill.taxinvoice.state.issue".into(),
            receipt: Receipt::from_report(partition, offset).expect("a real offset"),
        };
        let mut got = Vec::new();
        line(&mut got, &e);
        let want = format!(
            "{identity:032x} {body:016x} {partition} {offset} popbill.taxinvoice.state.issue {id}\n"
        );
        assert_eq!(String::from_utf8(got).expect("utf8"), want);
    }
}

#[test]
fn hex_words_parse_as_from_str_radix_does() {
    for w in [
        "0",
        "00000000000000000000000000000001",
        "ffffffffffffffffffffffffffffffff",
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        "+fffffffffffffffffffffffffffffff",
        "",
        "+",
        "-1",
        "0x1",
        "g",
        " 1",
        "123456789abcdefABCDEF",
        "fffffffffffffffffffffffffffffffff",
    ] {
        assert_eq!(
            parse_hex(w.as_bytes()),
            u128::from_str_radix(w, 16).ok(),
            "{w:?}"
        );
    }
}

#[test]
fn entries_parse_back_from_the_written_lines() {
    let mut value = String::new();
    for (d, b, id) in [
        (0x1u128, 2u64, "m-1"),
        (u128::MAX, u64::MAX, "content:ab cd"),
    ] {
        let _ = writeln!(
            value,
            "{d:032x} {b:016x} 3 42 popbill.taxinvoice.state.issue {id}"
        );
    }
    value.push_str("not a digest line\n\n");
    let got: Vec<Claim> = parse_entries(value.as_bytes()).collect();
    assert_eq!(
        got,
        vec![
            Claim {
                identity: 1,
                body: 2
            },
            Claim {
                identity: u128::MAX,
                body: u64::MAX
            }
        ]
    );
}

#[test]
fn lines_without_a_body_digest_vouch_for_nothing() {
    // Written by earlier versions: identity, partition, offset, topic, id.
    let old = format!("{:032x} 3 42 popbill.taxinvoice.state.issue m-1\n", 7u128);
    assert_eq!(parse_entries(old.as_bytes()).count(), 0);
}

#[test]
fn a_ledger_line_keeps_at_most_128_bytes_of_the_id_cut_at_a_character() {
    let e = |id: &str| Entry {
        claim: Claim {
            identity: 1,
            body: 2,
        },
        id: id.into(),
        topic: "t".into(),
        receipt: Receipt::from_report(0, 0).expect("a real offset"),
    };
    let mut out = Vec::new();
    line(&mut out, &e(&"x".repeat(15_000)));
    assert!(out.len() <= MAX_LINE, "{}", out.len());
    assert!(out.len() <= line_len(&e(&"x".repeat(15_000))));
    assert!(out.ends_with(format!(" t {}\n", "x".repeat(128)).as_bytes()));
    // 43 three-byte characters are 129 bytes: 42 of them fit.
    let mut out = Vec::new();
    line(&mut out, &e(&"가".repeat(43)));
    assert!(out.ends_with(format!(" t {}\n", "가".repeat(42)).as_bytes()));
    // The digests still parse back.
    assert_eq!(parse_entries(&out).count(), 1);
}
