use super::*;
use crate::error::BridgeError;
use crate::receipt::Receipt;
use crate::route::Router;
use crate::route::RoutesConfig;

/// A duplicates part with memory and coalescing, no ledger; shared by the
/// tests of `inflight` and `memory`.
pub(super) fn dedup(enabled: bool) -> Arc<Dedup> {
    let router = Router::new(
        &RoutesConfig::default(),
        &crate::route::DeadLetterConfig::default(),
    )
    .expect("routes");
    let metrics = Arc::new(Metrics::new(router.routes()));
    let cfg = DedupConfig {
        enabled,
        window: Duration::from_secs(86_400),
        max_entries: 1_000_000,
        ..DedupConfig::default()
    };
    Arc::new(Dedup::new(&cfg, metrics))
}

/// A claim whose body digest is the same for every copy.
pub(super) fn c(identity: u128) -> Claim {
    Claim { identity, body: 7 }
}

pub(super) fn receipt() -> Receipt {
    Receipt::from_report(0, 1).expect("a real offset")
}

#[test]
fn a_confirmed_identity_is_seen_and_a_failed_one_is_not() {
    let d = dedup(true);
    let Admission::Lead(lead) = d.admit(c(1), "m") else {
        panic!("first copy leads")
    };
    lead.settle(Err(Arc::new(BridgeError::PublishTimeout)));
    let Admission::Lead(lead) = d.admit(c(1), "m") else {
        panic!("a failed attempt is not a duplicate")
    };
    lead.settle(Ok(receipt()));
    assert!(matches!(d.admit(c(1), "m"), Admission::Seen));
    assert!(matches!(d.admit(c(2), "m"), Admission::Lead(_)));
}

#[test]
fn disabled_means_every_copy_leads() {
    let d = dedup(false);
    let Admission::Lead(lead) = d.admit(c(1), "m") else {
        panic!("lead")
    };
    lead.settle(Ok(receipt()));
    assert!(matches!(d.admit(c(1), "m"), Admission::Lead(_)));
}

/// Issue #23: eviction dropped whole buckets only, so within one
/// eighth of the window (6 h by default) nothing was evicted: 5,000
/// unique MIDs under a cap of 1,000 left 5,531 remembered. The cap must
/// hold at every moment, the oldest confirmations going first.
#[test]
fn the_cap_holds_at_every_moment_against_a_flood_within_one_bucket() {
    let cfg = DedupConfig {
        max_entries: 1_000,
        ..DedupConfig::default()
    };
    let d = Arc::new(Dedup::new(&cfg, Arc::new(Metrics::new(&[]))));
    let now = SystemTime::now();
    for i in 0..5_000u128 {
        d.remember(spread(i), now);
        assert!(
            d.remembered() <= 1_000,
            "{} remembered after {i}",
            d.remembered()
        );
    }
    let kept = d.remembered();
    assert!(
        kept >= 800,
        "an eighth of the cap goes at a time, not more: {kept}"
    );
    // The newest are kept, the oldest went first.
    for i in 4_900..5_000 {
        assert!(matches!(d.admit(spread(i), "m"), Admission::Seen), "{i}");
    }
    assert!(!matches!(d.admit(spread(0), "m"), Admission::Seen));
    let text = String::from_utf8(d.metrics.render()).expect("utf8");
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(-1.0)
    };
    assert_eq!(
        value("popbill_bridge_dedup_remembered_events "),
        kept as f64
    );
    assert_eq!(
        value("popbill_bridge_dedup_evicted_total "),
        (5_000 - kept) as f64
    );
    let bytes = value("popbill_bridge_dedup_memory_bytes ");
    assert!(
        bytes <= 64.0 * 1_000.0 * 1.5,
        "{bytes} bytes for a cap of 1,000"
    );
}

#[test]
fn memory_per_identity_stays_small() {
    let d = dedup(true);
    let now = SystemTime::now();
    for i in 0..100_000u128 {
        d.remember(
            Claim {
                identity: i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                body: i as u64,
            },
            now,
        );
    }
    assert_eq!(d.remembered(), 100_000);
    let bytes: usize = (0..SHARDS).map(|i| d.lock_shard(i).memory.bytes()).sum();
    let per = bytes as f64 / 100_000.0;
    assert!(per <= 64.0, "{per} bytes per remembered event");
}

fn spread(i: u128) -> Claim {
    Claim {
        identity: i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
        body: i as u64,
    }
}

#[test]
fn a_growing_memory_rehashes_at_most_a_sixteenth_of_it_under_any_one_lock() {
    let d = dedup(true);
    let n = 64_000;
    let now = SystemTime::now();
    for i in 0..n {
        d.remember(spread(i), now);
    }
    assert_eq!(d.remembered(), n as usize);
    // The largest table one lock guards is what one growth rehashes
    // while the deliveries of that part wait.
    let largest = (0..SHARDS)
        .map(|i| d.lock_shard(i).memory.len())
        .max()
        .unwrap_or(0);
    const { assert!(SHARDS >= 16) };
    assert!(
        largest <= n as usize / SHARDS * 9 / 8,
        "one lock guards {largest} of {n} events"
    );
    for i in (0..n).step_by(997) {
        assert!(matches!(d.admit(spread(i), "m"), Admission::Seen), "{i}");
    }
}

#[test]
fn the_cap_holds_over_all_the_parts_and_keeps_the_newest() {
    let cfg = DedupConfig {
        window: Duration::from_secs(8_000),
        max_entries: 1_600,
        ..DedupConfig::default()
    };
    let d = Arc::new(Dedup::new(&cfg, Arc::new(Metrics::new(&[]))));
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    // Ten buckets' worth (a bucket is 1,000 s), a thousand events each.
    for b in 0..10u128 {
        let at = t0 + Duration::from_secs(b as u64 * 1_000);
        d.remember_all((0..1_000).map(|i| spread(b * 1_000 + i)), at);
    }
    let kept = d.remembered();
    assert!(kept <= 1_600, "{kept} remembered over a cap of 1,600");
    for i in 9_000..10_000 {
        assert!(matches!(d.admit(spread(i), "m"), Admission::Seen), "{i}");
    }
    let text = String::from_utf8(d.metrics.render()).expect("utf8");
    assert!(
        text.contains(&format!("popbill_bridge_dedup_remembered_events {kept}")),
        "{text}"
    );
}

#[test]
fn a_remembered_identity_with_another_body_is_not_a_duplicate() {
    let d = dedup(true);
    let forged = Claim {
        identity: 42,
        body: 1,
    };
    let genuine = Claim {
        identity: 42,
        body: 2,
    };
    let Admission::Lead(lead) = d.admit(forged, "X") else {
        panic!("first copy leads")
    };
    lead.settle(Ok(receipt()));
    let Admission::Lead(lead) = d.admit(genuine, "X") else {
        panic!("the genuine event must be published, not answered as a duplicate")
    };
    let text = String::from_utf8(d.metrics.render()).expect("utf8");
    assert!(
        text.contains("popbill_bridge_dedup_conflicts_total 1"),
        "{text}"
    );
    lead.settle(Ok(receipt()));
    assert!(matches!(d.admit(genuine, "X"), Admission::Seen));
    assert!(matches!(d.admit(forged, "X"), Admission::Seen));
}

#[test]
fn copies_in_flight_with_different_bodies_do_not_share_a_verdict() {
    let d = dedup(true);
    let Admission::Lead(_first) = d.admit(
        Claim {
            identity: 5,
            body: 1,
        },
        "X",
    ) else {
        panic!("lead")
    };
    assert!(
        matches!(
            d.admit(
                Claim {
                    identity: 5,
                    body: 2
                },
                "X"
            ),
            Admission::Lead(_)
        ),
        "a different body in flight leads on its own"
    );
}
