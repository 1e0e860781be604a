//! Every named guard and its state now, as one serializable document: what `GET /guards` on the admin
//! listener answers, and what a dashboard page polls.
//!
//! The document is read from the counters and atomics each guard already keeps, by the functions that
//! list the guards of a kind ([`breakers`](crate::breakers), [`rate_limiters`](crate::rate_limiters), ...):
//! taking it costs the calls nothing. Its shape is stable: fields may be added, none is renamed or
//! removed. Durations are in seconds (a float), counts are whole numbers, and guards are listed by kind
//! (named as in the configuration's sections) and by name, in name order:
//!
//! ```json
//! {
//!   "breaker": {
//!     "llm": {
//!       "state": "open", "open_remaining_seconds": 12.5,
//!       "window": { "kind": "count", "size": 100, "calls": 20, "failures": 12, "slow": 0 },
//!       "failure_rate": 50, "slow_rate": 100, "slow_call_seconds": 60.0, "min_calls": 10,
//!       "open_for_seconds": 30.0, "half_open_calls": 3, "consecutive_failures": null,
//!       "calls": { "success": 8, "failure": 12, "slow": 0, "not_permitted": 4 }
//!     }
//!   },
//!   "rate": {
//!     "chat": {
//!       "calls": 60, "period_seconds": 60.0, "burst": 60, "wait_seconds": null, "scope": "local",
//!       "available": 57, "refused": 0, "backend_available": null,
//!       "keyed": { "keys": 2, "max_keys": 10000, "top_refused": [ { "key": "\"tenant-a\"", "refused": 4, "error": 0 } ] }
//!     }
//!   },
//!   "concurrency": {
//!     "model": { "limit": 8, "in_flight": 3, "queued": 0, "refused": 0, "wait_seconds": 30.0, "adaptive": null }
//!   },
//!   "bulkhead": {
//!     "tools": { "max": 5, "in_use": 1, "available": 4, "waiting": 0, "refused": 0, "wait_seconds": null, "keys_in_flight": 0 }
//!   },
//!   "retry": {
//!     "llm": { "attempts": 2, "budget": 10, "retried": 0, "denied": 0 }
//!   },
//!   "hedge": {
//!     "search": { "delay_seconds": 0.25, "max": 1, "budget": 10, "denied": 0 }
//!   }
//! }
//! ```
//!
//! `open_remaining_seconds` is set only while the breaker is `open`. A rate limiter's `keyed` is `null`
//! until a keyed call has used it; its `top_refused` names tenants, which is why this document is served
//! on the admin listener only.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::concurrency::Limit;
use crate::rate_limit::RefusedKey;
use crate::{Bulkhead, CircuitBreaker, ConcurrencyLimit, HedgePolicy, RateLimiter, RetryPolicy};

/// How many of a keyed limiter's most refused keys the document lists.
pub const TOP_REFUSED_KEYS: usize = 10;

/// Every named guard, by kind and by name; see the [module](self) for the JSON.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct GuardStates {
    /// Circuit breakers.
    pub breaker: BTreeMap<&'static str, BreakerView>,
    /// Rate limiters.
    pub rate: BTreeMap<&'static str, RateView>,
    /// Concurrency limits.
    pub concurrency: BTreeMap<&'static str, ConcurrencyView>,
    /// Bulkheads.
    pub bulkhead: BTreeMap<&'static str, BulkheadView>,
    /// Retry policies.
    pub retry: BTreeMap<&'static str, RetryView>,
    /// Hedging policies.
    pub hedge: BTreeMap<&'static str, HedgeView>,
}

/// Every guard made so far (every guard a function declares is made at startup), and its state now.
#[must_use]
pub fn snapshot() -> GuardStates {
    crate::guards::resolve_declared();
    GuardStates {
        breaker: crate::breakers().into_iter().map(|guard| (guard.name(), BreakerView::of(guard))).collect(),
        rate: crate::rate_limiters().into_iter().map(|guard| (guard.name(), RateView::of(guard))).collect(),
        concurrency: crate::concurrency_limits()
            .into_iter()
            .map(|guard| (guard.name(), ConcurrencyView::of(guard)))
            .collect(),
        bulkhead: crate::bulkheads().into_iter().map(|guard| (guard.name(), BulkheadView::of(guard))).collect(),
        retry: crate::retry_policies().into_iter().map(|guard| (guard.name(), RetryView::of(guard))).collect(),
        hedge: crate::hedge_policies().into_iter().map(|guard| (guard.name(), HedgeView::of(guard))).collect(),
    }
}

/// A circuit breaker's state, its window and its settings.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BreakerView {
    /// `closed`, `open`, `half_open`, `forced_open` or `disabled`.
    pub state: &'static str,
    /// While `open`: how long until the next call probes it (0 once due).
    pub open_remaining_seconds: Option<f64>,
    /// What the sliding window holds.
    pub window: WindowView,
    /// Failure percentage of the window at or above which it opens.
    pub failure_rate: u8,
    /// Slow-call percentage of the window at or above which it opens.
    pub slow_rate: u8,
    /// A call lasting at least this long is slow.
    pub slow_call_seconds: f64,
    /// Calls the window must hold before rates are judged.
    pub min_calls: u32,
    /// How long it stays open before probing.
    pub open_for_seconds: f64,
    /// Probes admitted while half-open.
    pub half_open_calls: u32,
    /// Failures in a row that open it, when set instead of rates.
    pub consecutive_failures: Option<u32>,
    /// Calls seen since the process started (or the breaker was reset), by result.
    pub calls: BreakerCallsView,
}

impl BreakerView {
    fn of(breaker: &CircuitBreaker) -> BreakerView {
        let config = breaker.config();
        let totals = breaker.window_totals();
        let counts = breaker.counts();
        BreakerView {
            state: breaker.state().as_str(),
            open_remaining_seconds: breaker.open_remaining().map(|remaining| remaining.as_secs_f64()),
            window: WindowView {
                kind: config.window_kind.as_str(),
                size: config.window,
                calls: totals.calls,
                failures: totals.failures,
                slow: totals.slow,
            },
            failure_rate: config.failure_rate,
            slow_rate: config.slow_rate,
            slow_call_seconds: config.slow_call.as_secs_f64(),
            min_calls: config.min_calls,
            open_for_seconds: config.open_for.as_secs_f64(),
            half_open_calls: config.half_open_calls,
            consecutive_failures: config.consecutive_failures,
            calls: BreakerCallsView {
                success: counts.success,
                failure: counts.failure,
                slow: counts.slow,
                not_permitted: counts.not_permitted,
            },
        }
    }
}

/// A breaker's sliding window now.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct WindowView {
    /// `count` (the last `size` calls) or `time` (the calls of the last `size` seconds).
    pub kind: &'static str,
    /// Calls or seconds.
    pub size: u32,
    /// Calls in the window.
    pub calls: u32,
    /// Failed calls in the window.
    pub failures: u32,
    /// Slow calls in the window.
    pub slow: u32,
}

/// A breaker's calls by result, as `hardened_circuit_breaker_calls_total` counts them.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BreakerCallsView {
    /// Succeeded in time.
    pub success: u64,
    /// Failed.
    pub failure: u64,
    /// Succeeded but slow.
    pub slow: u64,
    /// Refused while open.
    pub not_permitted: u64,
}

/// A rate limiter's tokens, refusals, settings and keys.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RateView {
    /// Calls admitted per period.
    pub calls: u32,
    /// The period.
    pub period_seconds: f64,
    /// The bucket's capacity.
    pub burst: u32,
    /// How long a call may wait for a token; `null` refuses at once.
    pub wait_seconds: Option<f64>,
    /// `local` or `global` (one bucket in Redis).
    pub scope: &'static str,
    /// Tokens in the (unkeyed) bucket now.
    pub available: u32,
    /// Calls refused so far.
    pub refused: u64,
    /// A global limiter: whether Redis answered its last question; `null` for a local one.
    pub backend_available: Option<bool>,
    /// Per-key buckets, once a keyed call has used the limiter.
    pub keyed: Option<KeyedView>,
}

impl RateView {
    fn of(limiter: &RateLimiter) -> RateView {
        let config = limiter.config();
        let keys = limiter.keys();
        let top_refused = limiter.top_refused(TOP_REFUSED_KEYS);
        RateView {
            calls: config.calls,
            period_seconds: config.period.as_secs_f64(),
            burst: config.burst,
            wait_seconds: config.wait.map(|wait| wait.as_secs_f64()),
            scope: limiter.scope().as_str(),
            available: limiter.available(),
            refused: limiter.refused(),
            backend_available: limiter.backend_available(),
            keyed: (keys > 0 || !top_refused.is_empty()).then(|| KeyedView {
                keys,
                max_keys: config.max_keys,
                top_refused: top_refused.into_iter().map(RefusedKeyView::from).collect(),
            }),
        }
    }
}

/// A keyed limiter's buckets.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct KeyedView {
    /// Keys whose buckets it holds now.
    pub keys: usize,
    /// Keys it holds at most.
    pub max_keys: u32,
    /// The keys refused most in the last one to two minutes, most first (at most [`TOP_REFUSED_KEYS`]).
    pub top_refused: Vec<RefusedKeyView>,
}

/// A key a limiter refused, with how often.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RefusedKeyView {
    /// The key as its `Debug` shows it.
    pub key: String,
    /// Refusals counted in the last one to two minutes.
    pub refused: u64,
    /// How much `refused` may overstate the true count.
    pub error: u64,
}

impl From<RefusedKey> for RefusedKeyView {
    fn from(refused: RefusedKey) -> RefusedKeyView {
        RefusedKeyView { key: refused.key, refused: refused.refused, error: refused.error }
    }
}

/// A concurrency limit's turns.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ConcurrencyView {
    /// Calls let in flight at once now (an adaptive limit's current estimate).
    pub limit: u32,
    /// Calls in flight.
    pub in_flight: u32,
    /// Calls queued for a turn.
    pub queued: u32,
    /// Calls refused so far (their wait ran out).
    pub refused: u64,
    /// How long a call may queue.
    pub wait_seconds: f64,
    /// An adaptive limit's algorithm and bounds; `null` for a fixed limit.
    pub adaptive: Option<AdaptiveView>,
}

impl ConcurrencyView {
    fn of(limit: &ConcurrencyLimit) -> ConcurrencyView {
        let config = limit.config();
        ConcurrencyView {
            limit: limit.limit(),
            in_flight: limit.in_flight(),
            queued: limit.queued(),
            refused: limit.refused(),
            wait_seconds: config.wait.as_secs_f64(),
            adaptive: match config.limit {
                Limit::Fixed(_) => None,
                Limit::Adaptive(algorithm) => Some(AdaptiveView {
                    algorithm: algorithm.word(),
                    min: config.min,
                    max: config.max,
                    rtt_seconds: limit.rtt_seconds(),
                    baseline_rtt_seconds: limit
                        .estimate()
                        .map_or(0.0, |estimate| Duration::from_nanos(estimate.baseline()).as_secs_f64()),
                }),
            },
        }
    }
}

/// An adaptive concurrency limit's algorithm and what it measured.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AdaptiveView {
    /// `aimd`, `vegas` or `gradient`.
    pub algorithm: &'static str,
    /// The lowest the limit goes.
    pub min: u32,
    /// The highest the limit goes.
    pub max: u32,
    /// The last window's average round trip (0 before the first).
    pub rtt_seconds: f64,
    /// The round trip taken as the dependency's unloaded one (0 before the first window).
    pub baseline_rtt_seconds: f64,
}

/// A bulkhead's permits.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BulkheadView {
    /// Calls allowed at once.
    pub max: u32,
    /// Permits held now.
    pub in_use: u32,
    /// Permits free now.
    pub available: u32,
    /// Calls waiting for a permit.
    pub waiting: u32,
    /// Calls refused so far.
    pub refused: u64,
    /// How long a call may wait; `null` refuses at once.
    pub wait_seconds: Option<f64>,
    /// Keys with calls in flight under keyed permits.
    pub keys_in_flight: usize,
}

impl BulkheadView {
    fn of(bulkhead: &Bulkhead) -> BulkheadView {
        let config = bulkhead.config();
        BulkheadView {
            max: config.max,
            in_use: bulkhead.in_use(),
            available: bulkhead.available(),
            waiting: bulkhead.waiting(),
            refused: bulkhead.refused(),
            wait_seconds: config.wait.map(|wait| wait.as_secs_f64()),
            keys_in_flight: bulkhead.keys_in_flight(),
        }
    }
}

/// A retry policy's budget.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RetryView {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Whole retries the budget holds now.
    pub budget: u64,
    /// Retries made so far.
    pub retried: u64,
    /// Retries (and hedges sharing the budget) the budget refused.
    pub denied: u64,
}

impl RetryView {
    fn of(policy: &RetryPolicy) -> RetryView {
        let (retried, denied) = policy.counts();
        RetryView { attempts: policy.config().attempts, budget: policy.budget(), retried, denied }
    }
}

/// A hedging policy's delay and budget.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HedgeView {
    /// How long a first attempt runs before a hedge starts; `null` while a percentile has too few samples.
    pub delay_seconds: Option<f64>,
    /// Extra attempts a call may start.
    pub max: u32,
    /// Whole hedges the budget holds now.
    pub budget: u64,
    /// Hedges the budget refused.
    pub denied: u64,
}

impl HedgeView {
    fn of(policy: &HedgePolicy) -> HedgeView {
        HedgeView {
            delay_seconds: policy.delay().map(|delay| delay.as_secs_f64()),
            max: policy.max(),
            budget: policy.budget(),
            denied: policy.denied(),
        }
    }
}
