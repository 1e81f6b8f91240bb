use super::*;

#[test]
fn popbill_counts_only_ok_bodies_with_200() {
    assert!(popbill_accepts(200, b"OK"));
    assert!(popbill_accepts(200, br#"{"result":"OK"}"#));
    assert!(popbill_accepts(200, br#"{ "result" : "OK" }"#));
    for (status, body) in [
        (200, &b""[..]),
        (200, b"ok"),
        (200, b"OK\n"),
        (200, b"\"OK\""),
        (200, br#"{"result":"ok"}"#),
        (200, br#"{"result":"OK","x":1}"#),
        (202, b"OK"),
        (204, b""),
        (503, b"OK"),
    ] {
        assert!(!popbill_accepts(status, body), "{status} {body:?}");
    }
}
