use super::*;

#[test]
fn every_line_of_the_fixture_file_is_a_sample() {
    let lines = DELIVERIES.lines().filter(|l| !l.trim().is_empty()).count();
    let all = all();
    assert_eq!(all.len(), lines);
    for s in &all {
        assert!(!s.webhook_type().is_empty(), "{}", s.name);
        assert!(s.body_json().is_some(), "{}", s.name);
    }
    let issue = find("taxinvoice-issue").expect("sample");
    assert_eq!(issue.headers[0].0, "Content-Type", "file order kept");
    assert_eq!(issue.event_type().as_deref(), Some("Issue"));
    let crawl = find("hometax-taxinvoice-crawl").expect("sample");
    assert_eq!(crawl.event_type().as_deref(), Some("HTTaxinvoice"));
}
