//! The GCRA rate limiter on a manual clock: refill, burst, exact admission under concurrency, accuracy
//! over long runs, and `retry_after`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hardened::Rejected;
use hardened::clock::{Clock, ManualClock};
use hardened::rate_limit::{RateConfig, RateLimiter};

fn limiter(calls: u32, burst: u32) -> (RateLimiter, ManualClock) {
    let (clock, manual) = Clock::manual();
    let mut config = RateConfig::per_second(calls);
    config.burst = burst;
    (RateLimiter::new("test", config, clock), manual)
}

#[test]
fn a_full_bucket_admits_its_burst_then_refuses() {
    let (limiter, _) = limiter(10, 5);
    assert_eq!(limiter.available(), 5);
    for _ in 0..5 {
        limiter.try_acquire().expect("within the burst");
    }
    assert_eq!(limiter.available(), 0);
    let refusal = limiter.try_acquire().expect_err("the bucket is empty");
    assert_eq!(refusal, Rejected::RateLimited { name: "test", retry_after: Duration::from_millis(100) });
}

#[test]
fn the_bucket_refills_at_the_configured_rate() {
    let (limiter, clock) = limiter(10, 5);
    for _ in 0..5 {
        limiter.try_acquire().expect("burst");
    }
    clock.advance(Duration::from_millis(99));
    let refusal = limiter.try_acquire().expect_err("not yet");
    assert_eq!(refusal.retry_after(), Some(Duration::from_millis(1)), "retry_after is exact");
    clock.advance(Duration::from_millis(1));
    limiter.try_acquire().expect("one token after 100 ms");
    assert!(limiter.try_acquire().is_err());
    clock.advance(Duration::from_millis(250));
    assert_eq!(limiter.available(), 2);
}

#[test]
fn the_bucket_never_holds_more_than_its_burst() {
    let (limiter, clock) = limiter(10, 3);
    clock.advance(Duration::from_hours(1));
    assert_eq!(limiter.available(), 3);
    for _ in 0..3 {
        limiter.try_acquire().expect("burst");
    }
    assert!(limiter.try_acquire().is_err(), "an hour of idleness does not bank more than the burst");
}

#[test]
fn refill_stays_exact_over_a_long_run() {
    let (limiter, clock) = limiter(7, 7);
    let mut admitted = 0u64;
    // One simulated hour in 10 ms steps.
    for _ in 0..360_000 {
        clock.advance(Duration::from_millis(10));
        while limiter.try_acquire().is_ok() {
            admitted += 1;
        }
    }
    // The schedule starts with the first call, 10 ms in; the k-th call conforms at
    // 10 ms + (k - 6) * interval, so by the end of the hour floor((3600 s - 10 ms) / interval + 6) + 1
    // calls are due: the full bucket of 7, then 7 per second for the 3,599.99 s left.
    assert_eq!(admitted, 7 + 7 * 3600 - 1, "no drift over an hour");
}

#[test]
fn concurrent_acquisition_never_over_admits() {
    let (limiter, _) = limiter(1000, 500);
    let limiter = Arc::new(limiter);
    let admitted = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (limiter, admitted) = (limiter.clone(), admitted.clone());
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    if limiter.try_acquire().is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread finished");
    }
    assert_eq!(admitted.load(Ordering::Relaxed), 500, "exactly the burst on a stopped clock");
    assert_eq!(limiter.refused(), 79_500);
}

#[tokio::test(start_paused = true)]
async fn with_wait_a_call_queues_for_its_token_in_order() {
    let mut config = RateConfig::per_second(10);
    config.burst = 1;
    config.wait = Some(Duration::from_millis(150));
    let limiter: &'static RateLimiter = Box::leak(Box::new(RateLimiter::new("waiting", config, Clock::tokio())));
    let start = tokio::time::Instant::now();
    limiter.acquire().await.expect("the first token is there");
    limiter.acquire().await.expect("the second comes after 100 ms");
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    // Two reservations queue behind each other: 200 ms and 300 ms out; the second exceeds the wait.
    let queued = tokio::spawn(limiter.acquire());
    tokio::task::yield_now().await;
    let refusal = limiter.acquire().await.expect_err("beyond the wait");
    assert_eq!(refusal.retry_after(), Some(Duration::from_millis(200)));
    queued.await.expect("task finished").expect("within the wait");
    assert_eq!(start.elapsed(), Duration::from_millis(200));
}
