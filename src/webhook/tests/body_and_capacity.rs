//! The body and the capacity: slots, the body buffer, size limits and the body deadline.

use super::*;

#[tokio::test]
async fn with_every_slot_taken_a_delivery_is_read_then_shed_503_overloaded() {
    let f = guarded("api_key");
    let held = f.app.capacity.try_slot().expect("slot");
    let known = [
        ("X-Forwarded-For", "203.0.113.7".to_string()),
        ("X-Api-Key", API_KEY.to_string()),
    ];
    let mut headers = issue_headers("mid-shed");
    headers.extend(known.iter().cloned());
    let r = exchange(&f.app, peer(), post(&headers, ISSUE_BODY)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(header(&r, RETRY_AFTER), Some("7"));
    assert!(r.body.contains("too many deliveries"), "{r:?}");
    assert_eq!(rejected(&f.app, "overloaded"), 1.0);

    // The body is checked before a slot is asked for: too large is 413.
    let mut big = known.to_vec();
    big.push(("Content-Length", "100000000".to_string()));
    let r = exchange(&f.app, peer(), post(&big, b"")).await;
    assert_eq!(r.status, 413, "{r:?}");

    // The slot back, the same sender gets through the checks.
    drop(held);
    let r = exchange(&f.app, peer(), post(&headers, ISSUE_BODY)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
}

/// Issue #23: the slot used to be taken before the body was read, so
/// senders trickling their bodies held every slot until the body
/// timeout and a genuine delivery was shed. Now a slot is taken only
/// once the whole body is in.
#[tokio::test]
async fn a_sender_slow_to_send_its_body_holds_no_slot() {
    let f = fixture(|c| c.limits.max_inflight = 2, &[]);
    // Two senders (as many as there are slots) announce 4000 bytes and
    // send 10: they wait for the rest until the deadline.
    let mut slow = Vec::new();
    for i in 0..2 {
        let mut headers = issue_headers(&format!("mid-slow-{i}"));
        headers.push(("Content-Length", "4000".into()));
        let app = f.app.clone();
        slow.push(tokio::spawn(async move {
            exchange(&app, peer(), post(&headers, b"{\"corpNum\"")).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    let r = exchange(
        &f.app,
        peer(),
        post(&issue_headers("mid-genuine"), ISSUE_BODY),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "no wait for a slot: {:?}",
        started.elapsed()
    );
    assert_eq!(rejected(&f.app, "overloaded"), 0.0);
    assert_eq!(
        metric(&f.app, "popbill_bridge_inflight_slot_waits_total"),
        0.0
    );
    for s in slow {
        assert_eq!(s.await.expect("slow sender").status, 408);
    }
}

/// Issue #23: what bodies hold is bounded by
/// `limits.max_body_buffer_bytes`, counted by what has arrived: senders
/// that sent much and stall take the room; a body that finds none
/// within `inflight_wait` is shed 503 `overloaded`, and gets through
/// once the room is back.
#[tokio::test]
async fn bodies_held_at_once_are_bounded_by_max_body_buffer_bytes() {
    let f = fixture(
        |c| {
            c.server.max_body_bytes = 1024;
            c.limits.max_body_buffer_bytes = 2048;
            c.limits.inflight_wait = Duration::from_millis(200);
        },
        &[],
    );
    let mut stalled = Vec::new();
    for i in 0..2 {
        let mut headers = issue_headers(&format!("mid-stall-{i}"));
        headers.push(("Content-Length", "1024".into()));
        let app = f.app.clone();
        stalled.push(tokio::spawn(async move {
            exchange(&app, peer(), post(&headers, &[b' '; 1000])).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(metric(&f.app, "popbill_bridge_body_buffer_bytes"), 2000.0);
    let r = exchange(&f.app, peer(), post(&issue_headers("mid-shed"), ISSUE_BODY)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("too many deliveries"), "{r:?}");
    assert_eq!(rejected(&f.app, "overloaded"), 1.0);
    for s in stalled {
        assert_eq!(s.await.expect("stalled sender").status, 408);
    }
    assert_eq!(metric(&f.app, "popbill_bridge_body_buffer_bytes"), 0.0);
    let r = exchange(
        &f.app,
        peer(),
        post(&issue_headers("mid-later"), ISSUE_BODY),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
}

#[tokio::test]
async fn a_delivery_that_finds_every_slot_taken_waits_for_one_freed_within_inflight_wait() {
    let f = guarded("api_key");
    let held = f.app.capacity.try_slot().expect("slot");
    let mut headers = issue_headers("mid-waits");
    headers.push(("X-Forwarded-For", "203.0.113.7".to_string()));
    headers.push(("X-Api-Key", API_KEY.to_string()));
    let app = f.app.clone();
    let delivery =
        tokio::spawn(async move { exchange(&app, peer(), post(&headers, ISSUE_BODY)).await });
    // A momentary stall: the slot frees up well within the default
    // inflight_wait (500ms).
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(held);
    let r = delivery.await.expect("delivery");
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    assert_eq!(rejected(&f.app, "overloaded"), 0.0);
    assert_eq!(
        metric(&f.app, "popbill_bridge_inflight_slot_waits_total"),
        1.0
    );
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_413_before_a_byte_of_body_is_read() {
    let f = fixture(|c| c.server.max_body_bytes = 1024, &[]);
    let started = tokio::time::Instant::now();
    let mut headers = issue_headers("mid-1");
    headers.push(("Content-Length", "1025".into()));
    // Not a byte of the body is sent: reading it would wait for the
    // deadline (408), not answer 413.
    let r = exchange(&f.app, peer(), post(&headers, b"")).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.body.contains("1024"), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(rejected(&f.app, "body_too_large"), 1.0);
}

#[tokio::test]
async fn a_chunked_body_growing_past_the_limit_is_413_while_being_read() {
    let f = fixture(|c| c.server.max_body_bytes = 1024, &[]);
    let mut headers = issue_headers("mid-1");
    headers.push(("Transfer-Encoding", "chunked".into()));
    let mut body = Vec::new();
    for _ in 0..3 {
        body.extend_from_slice(format!("{:x}\r\n", 600).as_bytes());
        body.extend_from_slice(&[b' '; 600]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let r = exchange(&f.app, peer(), post(&headers, &body)).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(rejected(&f.app, "body_too_large"), 1.0);
}

/// A body that arrives in several pieces is published whole, byte for
/// byte, and the room it took is given back.
#[tokio::test]
async fn a_body_in_several_chunks_is_published_whole_and_its_room_given_back() {
    let f = fixture(|_| {}, &[]);
    let mut headers = issue_headers("mid-chunked");
    headers.push(("Transfer-Encoding", "chunked".into()));
    let mut body = Vec::new();
    for piece in ISSUE_BODY.chunks(30) {
        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let r = exchange(&f.app, peer(), post(&headers, &body)).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{r:?}");
    let record = first_record(&f.cluster, ISSUE_TOPIC).await;
    assert_eq!(record.payload(), Some(ISSUE_BODY));
    assert_eq!(f.app.capacity.body_bytes_held(), 0);
    assert_eq!(metric(&f.app, "popbill_bridge_body_buffer_bytes"), 0.0);
}

#[tokio::test]
async fn a_body_still_incomplete_at_the_deadline_is_408_body_timeout() {
    let f = fixture(
        |c| {
            c.server.request_timeout = Duration::from_millis(500);
            c.kafka.message_timeout = Duration::from_millis(250);
            c.limits.inflight_wait = Duration::ZERO;
        },
        &[],
    );
    let mut headers = issue_headers("mid-1");
    headers.push(("Content-Length", "100".into()));
    let started = tokio::time::Instant::now();
    let r = exchange(&f.app, peer(), post(&headers, b"{\"corpNum\"")).await;
    let took = started.elapsed();
    assert_eq!(r.status, 408, "{r:?}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(rejected(&f.app, "body_timeout"), 1.0);
}

// --- published, duplicate, failed: `finish` --------------------------
