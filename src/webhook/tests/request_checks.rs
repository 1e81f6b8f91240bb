//! The request itself: path, method, source and credentials, in that order.

use super::*;

#[tokio::test]
async fn a_wrong_path_is_404_before_any_other_check() {
    let f = guarded("basic");
    // Wrong method too, no credentials, a stranger, no capacity left.
    let _all_taken = f.app.capacity.try_slot().expect("slot");
    for method in ["GET", "POST"] {
        let r = exchange(
            &f.app,
            peer(),
            request(
                method,
                "/popbill/webhook/x",
                &[("X-Forwarded-For", "198.51.100.9".into())],
                b"",
            ),
        )
        .await;
        assert_eq!(r.status, 404, "{method}: {r:?}");
    }
    assert_eq!(rejected(&f.app, "not_found"), 2.0);
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_post_before_the_source_is_checked() {
    let f = guarded("basic");
    let r = exchange(
        &f.app,
        peer(),
        request(
            "GET",
            PATH,
            &[("X-Forwarded-For", "198.51.100.9".into())],
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(header(&r, ALLOW), Some("POST"));
    assert_eq!(rejected(&f.app, "method_not_allowed"), 1.0);
}

#[tokio::test]
async fn a_forwarded_client_off_the_allow_list_is_403_before_credentials_are_checked() {
    let f = guarded("basic");
    let r = exchange(
        &f.app,
        peer(),
        post(&[("X-Forwarded-For", "198.51.100.9".into())], ISSUE_BODY),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("198.51.100.9"), "{r:?}");
    assert!(header(&r, WWW_AUTHENTICATE).is_none());
    assert_eq!(rejected(&f.app, "forbidden"), 1.0);
    assert_eq!(rejected(&f.app, "unauthorized"), 0.0);
}

#[tokio::test]
async fn missing_basic_credentials_are_401_with_www_authenticate_before_capacity_is_asked() {
    let f = guarded("basic");
    let _all_taken = f.app.capacity.try_slot().expect("slot");
    let r = exchange(
        &f.app,
        peer(),
        post(&[("X-Forwarded-For", "203.0.113.7".into())], ISSUE_BODY),
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    let challenge = header(&r, WWW_AUTHENTICATE).expect("WWW-Authenticate");
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    assert_eq!(rejected(&f.app, "unauthorized"), 1.0);
    assert_eq!(rejected(&f.app, "overloaded"), 0.0);
}

#[tokio::test]
async fn a_wrong_api_key_is_401_without_www_authenticate() {
    let f = guarded("api_key");
    let r = exchange(
        &f.app,
        peer(),
        post(
            &[
                ("X-Forwarded-For", "203.0.113.7".into()),
                ("X-Api-Key", "wrong".into()),
            ],
            ISSUE_BODY,
        ),
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(header(&r, WWW_AUTHENTICATE).is_none(), "{r:?}");
}
