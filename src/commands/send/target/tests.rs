use super::*;

#[test]
fn urls_are_parsed_with_their_defaults() {
    let t = Target::parse("https://hooks.example.com/popbill/webhook").expect("url");
    assert!(t.https && t.port == 443 && t.popbill_port());
    assert_eq!(t.host, "hooks.example.com");
    assert_eq!(t.path_and_query, "/popbill/webhook");
    let t = Target::parse("http://[::1]:9854").expect("url");
    assert_eq!(
        (t.host.as_str(), t.port, t.path_and_query.as_str()),
        ("::1", 9854, "/")
    );
    assert_eq!(t.authority, "[::1]:9854");
    assert!(Target::parse("ftp://x/").is_err());
    assert!(Target::parse("hooks.example.com/popbill").is_err());
    assert!(Target::parse("https://u:p@x/").is_err());
}
