use super::*;

#[tokio::test]
async fn ok_bodies_are_what_popbill_accepts() {
    assert_eq!(body_of(ok(OkBody::Plain)).await, "OK");
    assert_eq!(body_of(ok(OkBody::Json)).await, r#"{"result":"OK"}"#);
}
