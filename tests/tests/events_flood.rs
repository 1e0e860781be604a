//! Guard events: a subscriber that falls behind loses the oldest events, is told how many, and goes on.
//! A binary of its own, so that its flood of events drops none of another test's.

use hardened::events::{CAPACITY, GuardEventKind, Missed};

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
    let mut events = hardened::events();
    let breaker = hardened::breaker("events_flood");
    let extra = 10;
    // Each round is two transitions.
    for _ in 0..CAPACITY / 2 + extra / 2 {
        breaker.force_open();
        breaker.reset();
    }
    let Err(Missed(missed)) = events.recv().await else { panic!("the oldest events were dropped") };
    assert_eq!(missed, extra as u64);
    let next = events.recv().await.expect("the stream goes on");
    assert!(matches!(next.kind, GuardEventKind::Transition { .. }), "{next:?}");
}
