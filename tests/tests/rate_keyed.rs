//! Keyed and weighted rate limits: one bucket per key within `max_keys`, calls that take `cost` tokens,
//! settlement of what a call used, the keys refused most; on the manual clock, against a reference model,
//! and through the attribute.

use std::collections::BTreeMap;
use std::time::Duration;

use hardened::clock::Clock;
use hardened::rate_limit::{Demand, RateConfig, RateLimiter};
use hardened::{Rejected, hardened};
use hardened_tests::{calls, sample};
use proptest::prelude::*;

const SECOND: Duration = Duration::from_secs(1);

/// `calls` per second with a burst of `burst`, holding at most `max_keys` keys' buckets.
fn config(calls: u32, burst: u32, max_keys: u32) -> RateConfig {
    let mut config = RateConfig::per_second(calls);
    config.burst = burst;
    config.max_keys = max_keys;
    config
}

#[test]
fn each_key_has_its_own_bucket() {
    let (clock, time) = Clock::manual();
    let limiter = RateLimiter::new("keyed_each", config(1, 2, 100), clock);
    for _ in 0..2 {
        assert!(limiter.try_take(Demand::keyed(&"alice", 1_u32)).is_ok());
    }
    let refused = limiter.try_take(Demand::keyed(&"alice", 1_u32)).expect_err("alice spent her burst");
    assert_eq!(refused, Rejected::RateLimited { name: "keyed_each", retry_after: SECOND });
    assert!(limiter.try_take(Demand::keyed(&"bob", 1_u32)).is_ok(), "bob has his own bucket");
    assert!(limiter.try_take(Demand::ONE).is_ok(), "the limiter's own bucket is separate too");
    assert_eq!(limiter.keys(), 2);
    time.advance(SECOND);
    assert!(limiter.try_take(Demand::keyed(&"alice", 1_u32)).is_ok(), "one token came back");
    assert_eq!(limiter.refused(), 1);
}

#[test]
fn a_weighted_call_takes_its_cost_and_a_cost_over_the_burst_is_refused_at_once() {
    let (clock, time) = Clock::manual();
    // 100 tokens per second, 100 at once.
    let limiter = RateLimiter::new("weighted", config(100, 100, 10), clock);
    assert!(limiter.try_take(Demand::tokens(60_u64)).is_ok());
    let refused = limiter.try_take(Demand::tokens(60_u64)).expect_err("40 tokens are left");
    // 20 more tokens take 200 ms to come back.
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(200)));
    time.advance(Duration::from_millis(200));
    assert!(limiter.try_take(Demand::tokens(60_u64)).is_ok());
    assert_eq!(
        limiter.try_take(Demand::tokens(101_u64)),
        Err(Rejected::CostOverBurst { name: "weighted", cost: 101, burst: 100 })
    );
    assert_eq!(Rejected::CostOverBurst { name: "weighted", cost: 101, burst: 100 }.retry_after(), None);
    assert!(limiter.try_take(Demand::tokens(0_u8)).is_ok(), "a call of no tokens always passes");
}

#[test]
fn settling_refunds_or_charges_the_difference() {
    let (clock, time) = Clock::manual();
    let limiter = RateLimiter::new("settled", config(10, 10, 10), clock);
    // Estimated 8, used 2: 6 come back, so 8 more fit.
    let ticket = limiter.try_take(Demand::keyed(&7_u64, 8_u32)).expect("a full bucket");
    limiter.settle_now(ticket, 2);
    let ticket = limiter.try_take(Demand::keyed(&7_u64, 8_u32)).expect("refunded");
    // Estimated 8, used 14: 6 more are charged from an empty bucket, which is 6 in debt.
    limiter.settle_now(ticket, 14);
    let refused = limiter.try_take(Demand::keyed(&7_u64, 1_u32)).expect_err("in debt");
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(700)), "6 tokens of debt and 1 to take");
    time.advance(Duration::from_millis(700));
    assert!(limiter.try_take(Demand::keyed(&7_u64, 1_u32)).is_ok());
    // A refund never fills a bucket beyond its burst.
    time.advance(Duration::from_mins(1));
    let ticket = limiter.try_take(Demand::tokens(10_u32)).expect("full");
    limiter.settle_now(ticket, 0);
    for _ in 0..10 {
        assert!(limiter.try_take(Demand::ONE).is_ok());
    }
    assert!(limiter.try_take(Demand::ONE).is_err(), "ten tokens, not twenty");
}

#[test]
fn the_keys_refused_most_are_listed_for_an_operator() {
    let (clock, _time) = Clock::manual();
    let limiter = RateLimiter::new("top_refused", config(1, 1, 100), clock);
    for (tenant, attempts) in [("acme", 6), ("globex", 3), ("initech", 1)] {
        for _ in 0..attempts {
            let _ = limiter.try_take(Demand::keyed(&tenant, 1_u32));
        }
    }
    let top = limiter.top_refused(2);
    let listed: Vec<(&str, u64)> = top.iter().map(|key| (key.key.as_str(), key.refused)).collect();
    assert_eq!(listed, [("\"acme\"", 5), ("\"globex\"", 2)]);
}

#[test]
fn memory_stays_flat_across_a_million_keys() {
    let (clock, time) = Clock::manual();
    let limiter = RateLimiter::new("million", config(1, 1, 10_000), clock);
    for key in 0..1_000_000_u64 {
        assert!(limiter.try_take(Demand::keyed(&key, 1_u32)).is_ok(), "a new key's bucket is full");
        if key % 1_000 == 0 {
            time.advance(Duration::from_micros(1));
            assert!(limiter.keys() <= 10_000, "{} buckets after {key} keys", limiter.keys());
        }
    }
    assert!(limiter.keys() <= 10_000);
}

#[test]
fn a_smaller_max_keys_applies_at_once() {
    let (clock, _time) = Clock::manual();
    let limiter = RateLimiter::new("shrunk", config(1, 1, 100), clock);
    for key in 0..50_u32 {
        assert!(limiter.try_take(Demand::keyed(&key, 1_u32)).is_ok());
    }
    assert_eq!(limiter.keys(), 50);
    assert!(limiter.retune(&config(1, 1, 10)));
    assert_eq!(limiter.keys(), 10);
    assert_eq!(limiter.config().max_keys, 10);
}

/// A bucket as a level of tokens (in nanoseconds of refill, `interval` per token), the formulation the
/// limiter's theoretical arrival time is equivalent to: an independent model of the same rule.
#[derive(Debug, Clone, Copy)]
struct ModelBucket {
    level: i128,
    at: u64,
    used: u64,
}

#[derive(Debug)]
struct Model {
    interval: i128,
    capacity: i128,
    max_keys: usize,
    buckets: BTreeMap<u8, ModelBucket>,
}

impl Model {
    fn level(&self, key: u8, now: u64) -> i128 {
        self.buckets
            .get(&key)
            .map_or(self.capacity, |bucket| (bucket.level + i128::from(now - bucket.at)).min(self.capacity))
    }

    /// Keeps `level` for `key` at `now`, making room as the limiter does when the key is new.
    fn keep(&mut self, key: u8, level: i128, now: u64) {
        if let Some(bucket) = self.buckets.get_mut(&key) {
            *bucket = ModelBucket { level, at: now, used: now };
            return;
        }
        if level >= self.capacity {
            return;
        }
        if self.buckets.len() >= self.max_keys {
            let capacity = self.capacity;
            let full: Vec<u8> = self
                .buckets
                .iter()
                .filter(|(_, bucket)| bucket.level + i128::from(now - bucket.at) >= capacity)
                .map(|(key, _)| *key)
                .collect();
            if full.is_empty() {
                let oldest = self.buckets.iter().min_by_key(|(_, bucket)| bucket.used).map(|(key, _)| *key);
                self.buckets.remove(&oldest.expect("a full map"));
            }
            for key in full {
                self.buckets.remove(&key);
            }
        }
        self.buckets.insert(key, ModelBucket { level, at: now, used: now });
    }

    fn touch(&mut self, key: u8, now: u64) {
        if let Some(bucket) = self.buckets.get_mut(&key) {
            let level = (bucket.level + i128::from(now - bucket.at)).min(self.capacity);
            *bucket = ModelBucket { level, at: now, used: now };
        }
    }

    /// The retry-after of a refusal, or `None` when the call is admitted.
    fn take(&mut self, key: u8, cost: u64, now: u64) -> Option<u64> {
        if cost == 0 {
            self.touch(key, now);
            return None;
        }
        let level = self.level(key, now);
        let needed = i128::from(cost) * self.interval;
        if level >= needed {
            self.keep(key, level - needed, now);
            None
        } else {
            self.touch(key, now);
            Some(u64::try_from(needed - level).expect("positive"))
        }
    }

    fn settle(&mut self, key: u8, cost: u64, used: u64, now: u64) {
        let level = self.level(key, now);
        let difference = (i128::from(used) - i128::from(cost)) * self.interval;
        self.keep(key, (level - difference).min(self.capacity), now);
    }
}

#[derive(Debug, Clone)]
enum Step {
    Take { key: u8, cost: u64, used: Option<u64> },
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..6_u8, 0..5_u64, proptest::option::of(0..8_u64)).prop_map(|(key, cost, used)| Step::Take { key, cost, used }),
        1 => (0..3_000_u64).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every decision, retry-after and settlement of a keyed, weighted limiter of 3 keys at most agrees
    /// with the model: 1,000 tokens per second (an interval of 1 ms), a burst of 4.
    #[test]
    fn keyed_weighted_buckets_follow_the_model(steps in proptest::collection::vec(step(), 1..80)) {
        let (clock, time) = Clock::manual();
        let limiter = RateLimiter::new("model", config(1_000, 4, 3), clock);
        let mut model = Model { interval: 1_000_000, capacity: 4_000_000, max_keys: 3, buckets: BTreeMap::new() };
        let mut now = 0_u64;
        for step in steps {
            match step {
                Step::Wait(micros) => {
                    time.advance(Duration::from_micros(micros));
                    now += micros * 1_000;
                }
                Step::Take { key, cost, used } => {
                    // Each call at its own time: which of two buckets used at once is older is left open.
                    time.advance(Duration::from_nanos(1));
                    now += 1;
                    let taken = limiter.try_take(Demand::keyed(&key, cost));
                    let expected = model.take(key, cost, now);
                    match (taken, expected) {
                        (Ok(ticket), None) => {
                            if let Some(used) = used {
                                limiter.settle_now(ticket, used);
                                model.settle(key, cost, used, now);
                            }
                        }
                        (Err(Rejected::RateLimited { retry_after, .. }), Some(expected)) => {
                            prop_assert_eq!(u64::try_from(retry_after.as_nanos()).expect("within u64"), expected);
                        }
                        (taken, expected) => prop_assert!(false, "limiter {taken:?}, model {expected:?} at {now}"),
                    }
                    prop_assert_eq!(limiter.keys(), model.buckets.len());
                }
            }
        }
    }
}

// Through the attribute: a bucket per user, and a token budget settled from the reply.

#[derive(Debug, PartialEq, thiserror::Error)]
enum AppError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
    #[error("the model failed")]
    Failed,
}

#[hardened(rate(name = "per_user_sync", per_hour = 2, key = user))]
fn lookup(user: &str) -> Result<String, AppError> {
    Ok(user.to_owned())
}

#[test]
fn a_keyed_sync_function_has_a_bucket_per_argument_value() {
    assert_eq!(lookup("ann"), Ok("ann".to_owned()));
    assert_eq!(lookup("ann"), Ok("ann".to_owned()));
    assert!(matches!(lookup("ann"), Err(AppError::Refused(Rejected::RateLimited { name: "per_user_sync", .. }))));
    assert_eq!(lookup("ben"), Ok("ben".to_owned()), "ben has his own bucket");
    assert_eq!(calls("lookup", "rejected"), 1);
    assert_eq!(hardened::rate_limiter("per_user_sync").keys(), 2);
    assert_eq!(sample("hardened_rate_limiter_keys", &[("name", "per_user_sync")]), Some(2));
}

/// A reply and the tokens it used.
#[derive(Debug, PartialEq)]
struct Reply {
    text: String,
    tokens: u64,
}

fn tokens_used(reply: &Reply) -> u64 {
    reply.tokens
}

fn estimate(prompt: &str) -> u64 {
    u64::try_from(prompt.len()).unwrap_or(u64::MAX)
}

#[hardened(rate(name = "model_tpm", per_hour = 100, key = api_key, cost = estimate(&prompt), settle = tokens_used))]
async fn complete(api_key: String, prompt: String, used: u64, fail: bool) -> Result<Reply, AppError> {
    // The arguments move into the body: the key and the cost were read before it ran.
    let text = prompt;
    drop(api_key);
    if fail { Err(AppError::Failed) } else { Ok(Reply { text, tokens: used }) }
}

#[tokio::test]
async fn a_token_budget_is_taken_by_estimate_and_settled_by_what_was_used() {
    let key = || "key-1".to_owned();
    let limiter = hardened::rate_limiter("model_tpm");
    // 60 estimated, 10 used: 50 come back, leaving 90.
    let reply = complete(key(), "x".repeat(60), 10, false).await.expect("a full budget");
    assert_eq!(reply.tokens, 10);
    let ticket = limiter.try_take(Demand::keyed(&"key-1".to_owned(), 90_u32)).expect("90 tokens are left");
    limiter.settle_now(ticket, 0);
    // A failed call keeps what it took: 90 estimated, and 0 left after it.
    assert_eq!(complete(key(), "x".repeat(90), 0, true).await, Err(AppError::Failed));
    let refused = complete(key(), "x".to_owned(), 0, false).await.expect_err("the budget is spent");
    assert!(matches!(refused, AppError::Refused(Rejected::RateLimited { name: "model_tpm", .. })), "{refused:?}");
    // Another key has its own budget, and a prompt larger than the whole budget is refused at once.
    assert!(complete("key-2".to_owned(), "x".repeat(100), 1, false).await.is_ok());
    assert_eq!(
        complete("key-3".to_owned(), "x".repeat(101), 1, false).await,
        Err(AppError::Refused(Rejected::CostOverBurst { name: "model_tpm", cost: 101, burst: 100 }))
    );
    assert_eq!(calls("complete", "rejected"), 2);
    assert_eq!(calls("complete", "error"), 1);
    let top = limiter.top_refused(5);
    assert_eq!(top.iter().map(|key| key.key.as_str()).collect::<Vec<_>>(), ["\"key-1\"", "\"key-3\""]);
}

#[hardened(
    breaker(name = "tokens_breaker", consecutive_failures = 1),
    rate(name = "refunded", per_hour = 6, cost = 3_u32),
    timeout = "5s"
)]
async fn guarded_by_a_breaker(fail: bool) -> Result<u32, AppError> {
    if fail { Err(AppError::Failed) } else { Ok(1) }
}

#[tokio::test]
async fn a_call_refused_inside_gets_its_tokens_back() {
    let limiter = hardened::rate_limiter("refunded");
    assert_eq!(guarded_by_a_breaker(true).await, Err(AppError::Failed));
    assert_eq!(limiter.available(), 3, "the failed call kept its three tokens");
    // The breaker is open: the next call is refused inside it, and its three tokens come back.
    assert!(matches!(guarded_by_a_breaker(false).await, Err(AppError::Refused(Rejected::CircuitOpen { .. }))));
    assert_eq!(limiter.available(), 3);
}
