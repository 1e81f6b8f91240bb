use super::*;

fn topic(name: &str) -> TopicState {
    TopicState {
        name: Arc::from(name),
        state: AtomicU8::new(UNKNOWN),
        cannot_create: LastSaid::default(),
        said_missing: AtomicBool::new(false),
        serving: AtomicUsize::new(0),
        not_serving: LastSaid::default(),
        write_denied: std::sync::Mutex::new(None),
    }
}

#[test]
fn a_denied_write_is_named_with_the_acl_until_it_is_old() {
    let t = topic("popbill.taxinvoice");
    let at = Instant::now();
    assert_eq!(t.write_denial(at), None);
    t.set_write_denied(at);
    let said = t.write_denial(at + Duration::from_secs(3)).expect("named");
    assert!(said.contains("Write on topic popbill.taxinvoice"), "{said}");
    assert!(said.contains("3s ago"), "{said}");
    assert_eq!(
        t.write_denial(at + DENIAL_KEPT + Duration::from_secs(1)),
        None
    );
}
