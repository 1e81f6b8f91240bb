use super::*;

#[tokio::test]
async fn a_signal_fires_once_for_every_listener_and_on_drop() {
    let (trigger, signal) = signal();
    let (mut a, mut b) = (signal.clone(), signal);
    assert!(!a.is_fired());
    trigger.fire();
    a.fired().await;
    b.fired().await;
    assert!(a.is_fired() && b.is_fired());

    let (trigger, mut c) = super::signal();
    drop(trigger);
    tokio::time::timeout(Duration::from_secs(1), c.fired())
        .await
        .expect("a dropped trigger releases its listeners");
}

#[tokio::test]
async fn sleep_ends_early_when_fired() {
    let (trigger, mut s) = signal();
    trigger.fire();
    assert!(s.sleep(Duration::from_secs(60)).await);
    let (_t, mut s) = signal();
    assert!(!s.sleep(Duration::from_millis(1)).await);
}
