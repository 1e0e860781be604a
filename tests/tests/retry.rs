//! Retry policies: attempts, backoff bounds and the budget.

use std::time::Duration;

use hardened::retry::{RetryConfig, RetryPolicy};

#[test]
fn attempts_are_counted_and_then_refused() {
    let policy = RetryPolicy::new("test", RetryConfig::attempts(3));
    let delays: Vec<_> = (0..5).map(|retry| policy.next_delay(retry, None)).collect();
    assert!(delays[..3].iter().all(Option::is_some));
    assert!(delays[3..].iter().all(Option::is_none));
    assert_eq!(policy.counts(), (3, 0));
}

#[test]
fn backoff_doubles_up_to_its_cap_and_jitter_stays_within_half_and_whole() {
    let mut config = RetryConfig::attempts(10);
    config.backoff = Duration::from_millis(100);
    config.max_backoff = Duration::from_millis(700);
    config.jitter = false;
    config.budget_reserve = 100;
    let exact = RetryPolicy::new("exact", config.clone());
    let delays: Vec<_> = (0..5).map(|retry| exact.next_delay(retry, None).expect("within attempts")).collect();
    let millis: Vec<_> = delays.iter().map(Duration::as_millis).collect();
    assert_eq!(millis, [100, 200, 400, 700, 700]);

    config.jitter = true;
    config.budget_reserve = 1_000;
    let jittered = RetryPolicy::new("jittered", config.clone());
    for _ in 0..200 {
        for retry in 0..5 {
            let bound = config.backoff_bound(retry);
            let delay = jittered.next_delay(retry, None).expect("within attempts");
            assert!(
                delay >= bound / 2 && delay <= bound,
                "retry {retry}: {delay:?} outside [{:?}, {bound:?}]",
                bound / 2
            );
        }
    }
}

#[test]
fn a_guard_asking_for_more_time_gets_it() {
    let mut config = RetryConfig::attempts(1);
    config.jitter = false;
    let policy = RetryPolicy::new("test", config);
    assert_eq!(policy.next_delay(0, Some(Duration::from_secs(3))), Some(Duration::from_secs(3)));
}

#[test]
fn the_budget_caps_retries_at_a_share_of_calls() {
    let mut config = RetryConfig::attempts(5);
    config.budget_ratio = 0.2;
    config.budget_reserve = 10;
    let policy = RetryPolicy::new("test", config);
    // An outage: 1,000 calls, each failing every attempt.
    let mut retries = 0;
    for _ in 0..1_000 {
        policy.deposit();
        let mut retry = 0;
        while policy.next_delay(retry, None).is_some() {
            retry += 1;
            retries += 1;
        }
    }
    // The reserve (10) plus a fifth of the calls (200), instead of 5,000.
    assert!((200..=215).contains(&retries), "{retries} retries");
    let (made, denied) = policy.counts();
    assert_eq!(made, retries);
    assert!(denied >= 790);
}
