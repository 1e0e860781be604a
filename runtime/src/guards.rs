//! Named guards, shared process-wide: every function that says `breaker = "llm"` uses one breaker.
//!
//! A call site resolves its guards once, on its first call, into the static the macro generated; after
//! that no call looks anything up. Guards without a name belong to their function and are registered under
//! `module::function`.

use std::collections::BTreeMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use crate::breaker::{BreakerConfig, CircuitBreaker, WindowKind};
use crate::bulkhead::{Bulkhead, BulkheadConfig};
use crate::clock::Clock;
use crate::rate_limit::{RateConfig, RateLimiter};
use crate::retry::{RetryConfig, RetryPolicy};
use crate::site::Site;

/// Registered guards of one kind, by name.
struct Registry<T: 'static> {
    guards: RwLock<BTreeMap<&'static str, &'static T>>,
}

impl<T: 'static> Registry<T> {
    const fn new() -> Registry<T> {
        Registry { guards: RwLock::new(BTreeMap::new()) }
    }

    fn get(&self, name: &str) -> Option<&'static T> {
        self.guards.read().unwrap_or_else(PoisonError::into_inner).get(name).copied()
    }

    /// The guard called `name`, made by `make` if there is none yet. Guards live for the whole process.
    fn get_or_insert(&self, name: &str, make: impl FnOnce(&'static str) -> T) -> &'static T {
        if let Some(guard) = self.get(name) {
            return guard;
        }
        let mut guards = self.guards.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(guard) = guards.get(name) {
            return guard;
        }
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let guard: &'static T = Box::leak(Box::new(make(name)));
        guards.insert(name, guard);
        guard
    }

    fn all(&self) -> Vec<&'static T> {
        self.guards.read().unwrap_or_else(PoisonError::into_inner).values().copied().collect()
    }
}

static BREAKERS: Registry<CircuitBreaker> = Registry::new();
static RATE_LIMITERS: Registry<RateLimiter> = Registry::new();
static BULKHEADS: Registry<Bulkhead> = Registry::new();
static RETRY_POLICIES: Registry<RetryPolicy> = Registry::new();

/// The circuit breaker called `name`, with the default settings if no function or configuration made it.
pub fn breaker(name: &str) -> &'static CircuitBreaker {
    BREAKERS.get_or_insert(name, |name| CircuitBreaker::new(name, BreakerConfig::default(), Clock::system()))
}

/// The rate limiter called `name`, with the default settings if no function or configuration made it.
pub fn rate_limiter(name: &str) -> &'static RateLimiter {
    RATE_LIMITERS.get_or_insert(name, |name| RateLimiter::new(name, RateConfig::default(), Clock::system()))
}

/// The bulkhead called `name`, with the default settings if no function or configuration made it.
pub fn bulkhead(name: &str) -> &'static Bulkhead {
    BULKHEADS.get_or_insert(name, |name| Bulkhead::new(name, BulkheadConfig::default()))
}

/// The retry policy called `name`, with the default settings if no function or configuration made it.
pub fn retry_policy(name: &str) -> &'static RetryPolicy {
    RETRY_POLICIES.get_or_insert(name, |name| RetryPolicy::new(name, RetryConfig::default()))
}

/// Every breaker made so far.
pub fn breakers() -> Vec<&'static CircuitBreaker> {
    BREAKERS.all()
}

/// Every rate limiter made so far.
pub fn rate_limiters() -> Vec<&'static RateLimiter> {
    RATE_LIMITERS.all()
}

/// Every bulkhead made so far.
pub fn bulkheads() -> Vec<&'static Bulkhead> {
    BULKHEADS.all()
}

/// Every retry policy made so far.
pub fn retry_policies() -> Vec<&'static RetryPolicy> {
    RETRY_POLICIES.all()
}

/// What a `breaker(..)` argument says; unset fields come from the defaults.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct BreakerSpec {
    pub name: Option<&'static str>,
    pub failure_rate: Option<u8>,
    pub slow_rate: Option<u8>,
    pub slow_call_nanos: Option<u64>,
    pub window: Option<u32>,
    pub window_is_time: Option<bool>,
    pub min_calls: Option<u32>,
    pub open_for_nanos: Option<u64>,
    pub half_open_calls: Option<u32>,
    pub consecutive_failures: Option<u32>,
}

impl BreakerSpec {
    fn apply(&self, config: &mut BreakerConfig) {
        set(&mut config.failure_rate, self.failure_rate);
        set(&mut config.slow_rate, self.slow_rate);
        set(&mut config.slow_call, self.slow_call_nanos.map(Duration::from_nanos));
        set(&mut config.window, self.window);
        set(
            &mut config.window_kind,
            self.window_is_time.map(|time| if time { WindowKind::Time } else { WindowKind::Count }),
        );
        set(&mut config.min_calls, self.min_calls);
        set(&mut config.open_for, self.open_for_nanos.map(Duration::from_nanos));
        set(&mut config.half_open_calls, self.half_open_calls);
        if self.consecutive_failures.is_some() {
            config.consecutive_failures = self.consecutive_failures;
        }
    }
}

/// What a `rate(..)` argument says.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct RateSpec {
    pub name: Option<&'static str>,
    pub calls: Option<u32>,
    pub period_nanos: Option<u64>,
    pub burst: Option<u32>,
    pub wait_nanos: Option<u64>,
}

impl RateSpec {
    fn apply(&self, config: &mut RateConfig) {
        if let Some(calls) = self.calls {
            config.calls = calls;
            config.burst = calls.max(1);
        }
        set(&mut config.period, self.period_nanos.map(Duration::from_nanos));
        set(&mut config.burst, self.burst);
        if self.wait_nanos.is_some() {
            config.wait = self.wait_nanos.map(Duration::from_nanos);
        }
    }
}

/// What a `bulkhead(..)` argument says.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct BulkheadSpec {
    pub name: Option<&'static str>,
    pub max: Option<u32>,
    pub wait_nanos: Option<u64>,
}

impl BulkheadSpec {
    fn apply(&self, config: &mut BulkheadConfig) {
        set(&mut config.max, self.max);
        if self.wait_nanos.is_some() {
            config.wait = self.wait_nanos.map(Duration::from_nanos);
        }
    }
}

/// What a `retry(..)` argument says.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct RetrySpec {
    pub name: Option<&'static str>,
    pub attempts: Option<u32>,
    pub backoff_nanos: Option<u64>,
    pub max_backoff_nanos: Option<u64>,
    pub jitter: Option<bool>,
}

impl RetrySpec {
    fn apply(&self, config: &mut RetryConfig) {
        set(&mut config.attempts, self.attempts);
        set(&mut config.backoff, self.backoff_nanos.map(Duration::from_nanos));
        set(&mut config.max_backoff, self.max_backoff_nanos.map(Duration::from_nanos));
        set(&mut config.jitter, self.jitter);
    }
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

/// The guards of one call site, as written, and as resolved on the first call.
#[doc(hidden)]
#[derive(Debug)]
pub struct SiteGuards {
    site: &'static Site,
    breaker_spec: Option<BreakerSpec>,
    rate_spec: Option<RateSpec>,
    bulkhead_spec: Option<BulkheadSpec>,
    retry_spec: Option<RetrySpec>,
    timeout: Option<Duration>,
    breaker: OnceLock<&'static CircuitBreaker>,
    rate: OnceLock<&'static RateLimiter>,
    bulkhead: OnceLock<&'static Bulkhead>,
    retry: OnceLock<&'static RetryPolicy>,
}

impl SiteGuards {
    #[must_use]
    pub const fn new(
        site: &'static Site,
        breaker: Option<BreakerSpec>,
        rate: Option<RateSpec>,
        bulkhead: Option<BulkheadSpec>,
        retry: Option<RetrySpec>,
        timeout_nanos: Option<u64>,
    ) -> SiteGuards {
        SiteGuards {
            site,
            breaker_spec: breaker,
            rate_spec: rate,
            bulkhead_spec: bulkhead,
            retry_spec: retry,
            timeout: match timeout_nanos {
                Some(nanos) => Some(Duration::from_nanos(nanos)),
                None => None,
            },
            breaker: OnceLock::new(),
            rate: OnceLock::new(),
            bulkhead: OnceLock::new(),
            retry: OnceLock::new(),
        }
    }

    fn own_name(&self, named: Option<&'static str>) -> String {
        named.map_or_else(|| format!("{}::{}", self.site.module(), self.site.name()), ToOwned::to_owned)
    }

    /// The site's breaker, made with its literal settings on first use.
    #[inline]
    pub fn breaker(&self) -> Option<&'static CircuitBreaker> {
        let spec = self.breaker_spec.as_ref()?;
        Some(*self.breaker.get_or_init(|| {
            BREAKERS.get_or_insert(&self.own_name(spec.name), |name| {
                let mut config = BreakerConfig::default();
                spec.apply(&mut config);
                CircuitBreaker::new(name, config, Clock::system())
            })
        }))
    }

    /// The site's rate limiter.
    #[inline]
    pub fn rate_limiter(&self) -> Option<&'static RateLimiter> {
        let spec = self.rate_spec.as_ref()?;
        Some(*self.rate.get_or_init(|| {
            RATE_LIMITERS.get_or_insert(&self.own_name(spec.name), |name| {
                let mut config = RateConfig::default();
                spec.apply(&mut config);
                RateLimiter::new(name, config, Clock::system())
            })
        }))
    }

    /// The site's bulkhead.
    #[inline]
    pub fn bulkhead(&self) -> Option<&'static Bulkhead> {
        let spec = self.bulkhead_spec.as_ref()?;
        Some(*self.bulkhead.get_or_init(|| {
            BULKHEADS.get_or_insert(&self.own_name(spec.name), |name| {
                let mut config = BulkheadConfig::default();
                spec.apply(&mut config);
                Bulkhead::new(name, config)
            })
        }))
    }

    /// The site's retry policy.
    #[inline]
    pub fn retry(&self) -> Option<&'static RetryPolicy> {
        let spec = self.retry_spec.as_ref()?;
        Some(*self.retry.get_or_init(|| {
            RETRY_POLICIES.get_or_insert(&self.own_name(spec.name), |name| {
                let mut config = RetryConfig::default();
                spec.apply(&mut config);
                RetryPolicy::new(name, config)
            })
        }))
    }

    /// Makes every guard the site names, so their metrics exist before the first call.
    pub fn resolve_all(&self) {
        self.breaker();
        self.rate_limiter();
        self.bulkhead();
        self.retry();
    }

    /// The call site these guards belong to.
    #[must_use]
    pub fn site(&self) -> &'static Site {
        self.site
    }

    /// The site's timeout.
    #[inline]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}
