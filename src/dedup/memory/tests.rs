use super::*;
use crate::dedup::tests::c;

#[test]
fn identities_expire_after_the_window_by_bucket() {
    let mut m = Memory::new(Duration::from_secs(800), 1000);
    let t0 = 1_000_000;
    m.insert(c(1), t0);
    m.insert(c(2), t0 + 500);
    m.expire(t0 + 799);
    assert!(
        (m.lookup(c(1)) == Lookup::Same) && (m.lookup(c(2)) == Lookup::Same),
        "kept for at least the window"
    );
    m.expire(t0 + 1000);
    assert!(!(m.lookup(c(1)) == Lookup::Same) && (m.lookup(c(2)) == Lookup::Same));
    assert_eq!(m.len(), 1);
    m.insert(c(3), t0 - 10_000);
    assert!(
        !(m.lookup(c(3)) == Lookup::Same),
        "records older than the window are not kept"
    );
}

#[test]
fn the_cap_evicts_oldest_buckets_first() {
    let mut m = Memory::new(Duration::from_secs(800), 3);
    m.insert(c(1), 0);
    m.insert(c(2), 200);
    m.insert(c(3), 400);
    let evicted = m.insert(c(4), 600);
    assert_eq!(evicted, 1);
    assert!(!(m.lookup(c(1)) == Lookup::Same) && (m.lookup(c(4)) == Lookup::Same));
    assert_eq!(m.len(), 3);
}

#[test]
fn memory_per_remembered_event_stays_within_64_bytes_at_any_load() {
    // Right after a table grows it is at its emptiest (7/16 full).
    for n in [1_000u128, 14_337, 57_345, 100_000] {
        let mut m = Memory::new(Duration::from_secs(86_400), 10_000_000);
        for i in 0..n {
            m.insert(
                Claim {
                    identity: i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                    body: i as u64,
                },
                1_000_000,
            );
        }
        let per = m.bytes() as f64 / n as f64;
        assert!(per <= 64.0, "{per} bytes per remembered event at {n}");
    }
}
