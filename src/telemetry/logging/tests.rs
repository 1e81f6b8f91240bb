use super::*;

#[test]
fn a_problem_is_said_when_it_appears_or_changes_not_every_round() {
    let said = LastSaid::default();
    let p = |s: &str| Some(s.to_string());
    assert_eq!(said.update(p("a")), p("a"));
    assert_eq!(said.update(p("a")), None, "the same again is not said");
    assert_eq!(said.update(p("b")), p("b"));
    assert_eq!(said.update(None), None, "cleared: nothing to say");
    assert_eq!(said.get(), None);
    assert_eq!(said.update(p("b")), p("b"), "back after clearing");
    assert_eq!(said.get(), p("b"));
}

#[test]
fn repeated_kafka_trouble_is_said_once_then_summarised_every_30s() {
    let t = Throttle::new(Duration::from_secs(30));
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    // 30 lines a second for 75 s, as librdkafka does while Kafka is down.
    let mut said = Vec::new();
    for i in 0..(75 * 30) {
        let ms = i * 1000 / 30;
        match t.hit(at(ms)) {
            Say::Quiet => {}
            s => said.push((ms / 1000, s)),
        }
    }
    assert_eq!(
        said,
        [
            (0, Say::First),
            (30, Say::Summary { suppressed: 899 }),
            (60, Say::Summary { suppressed: 899 }),
        ]
    );
    // Kafka answers again: the rest of the count is reported once.
    assert_eq!(t.clear(), Some(449));
    assert_eq!(t.clear(), None, "no bout, nothing to report");
    // The next outage is said at once, not 30 s later.
    assert_eq!(t.hit(at(80_000)), Say::First);
}

/// JSON on a terminal (`docker run -t`, `kubectl run -it`) was written
/// through tracing, its fields as text inside `"message"`.
#[test]
fn json_lines_are_written_directly_on_a_terminal_too() {
    assert_eq!(direct_format(LogFormat::Json, true), Some(LogFormat::Json));
    assert_eq!(direct_format(LogFormat::Json, false), Some(LogFormat::Json));
    assert_eq!(direct_format(LogFormat::Text, false), Some(LogFormat::Text));
    assert_eq!(
        direct_format(LogFormat::Text, true),
        None,
        "tracing's colours"
    );
}
