use super::*;

#[test]
fn a_record_time_ahead_of_the_clock_is_clamped_to_it() {
    let now = SystemTime::now();
    let ahead = now + Duration::from_secs(3600);
    assert_eq!(clamp_to(ahead, now), now);
    let past = now - Duration::from_secs(10);
    assert_eq!(clamp_to(past, now), past);
}
