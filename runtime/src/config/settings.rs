//! The settings of one section (`[breaker.llm]`, `[rate.default]`, ...): each key is optional, and only
//! the keys written change a guard's configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Config;
use super::value::{self, Problem, Raw};
use crate::breaker::{BreakerConfig, MAX_WINDOW, WindowKind};
use crate::bulkhead::BulkheadConfig;
use crate::rate_limit::{OnUnavailable, RateConfig, Scope};
use crate::retry::RetryConfig;

/// The settings of a `[breaker.<name>]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakerSettings {
    /// `failure_rate`: failure percentage (1 to 100) at or above which the breaker opens.
    pub failure_rate: Option<u8>,
    /// `slow_rate`: slow-call percentage (1 to 100) at or above which the breaker opens.
    pub slow_rate: Option<u8>,
    /// `slow_call`: a call lasting at least this long is slow.
    pub slow_call: Option<Duration>,
    /// `window`: the window size, in calls or seconds (1 to 1048576).
    pub window: Option<u32>,
    /// `window_kind`: `"count"` or `"time"`.
    pub window_kind: Option<WindowKind>,
    /// `min_calls`: calls the window must hold before rates are judged.
    pub min_calls: Option<u32>,
    /// `open_for`: how long the breaker stays open before probing.
    pub open_for: Option<Duration>,
    /// `half_open_calls`: probes admitted in the half-open state.
    pub half_open_calls: Option<u32>,
    /// `consecutive_failures`: open after this many failures in a row instead of judging rates.
    pub consecutive_failures: Option<u32>,
    /// `extend_open_on_failure`: whether a failure reported while open restarts `open_for`.
    pub extend_open_on_failure: Option<bool>,
}

impl BreakerSettings {
    /// Every setting of `config`, as a section that sets them all.
    #[must_use]
    pub fn of(config: &BreakerConfig) -> BreakerSettings {
        BreakerSettings {
            failure_rate: Some(config.failure_rate),
            slow_rate: Some(config.slow_rate),
            slow_call: Some(config.slow_call),
            window: Some(config.window),
            window_kind: Some(config.window_kind),
            min_calls: Some(config.min_calls),
            open_for: Some(config.open_for),
            half_open_calls: Some(config.half_open_calls),
            consecutive_failures: config.consecutive_failures,
            extend_open_on_failure: Some(config.extend_open_on_failure),
        }
    }

    /// Sets in `config` what these settings say, and nothing else.
    pub fn apply_to(&self, config: &mut BreakerConfig) {
        set(&mut config.failure_rate, self.failure_rate);
        set(&mut config.slow_rate, self.slow_rate);
        set(&mut config.slow_call, self.slow_call);
        set(&mut config.window, self.window);
        set(&mut config.window_kind, self.window_kind);
        set(&mut config.min_calls, self.min_calls);
        set(&mut config.open_for, self.open_for);
        set(&mut config.half_open_calls, self.half_open_calls);
        if self.consecutive_failures.is_some() {
            config.consecutive_failures = self.consecutive_failures;
        }
        set(&mut config.extend_open_on_failure, self.extend_open_on_failure);
    }
}

/// The settings of a `[rate.<name>]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateSettings {
    /// `per_second`: calls admitted per period, and the period.
    pub per_second: Option<(u32, Duration)>,
    /// `burst`: calls admitted at once after a quiet spell.
    pub burst: Option<u32>,
    /// `wait`: how long a call may wait for a token.
    pub wait: Option<Duration>,
    /// `scope`: `"local"` (each replica its own bucket) or `"global"` (one bucket in Redis).
    pub scope: Option<Scope>,
    /// `redis_url`: the Redis server of a global limiter, instead of `REDIS_URL`.
    pub redis_url: Option<String>,
    /// `on_unavailable`: `"local"` (this replica's share decides) or `"reject"`, while Redis is unavailable.
    pub on_unavailable: Option<OnUnavailable>,
    /// `redis_timeout`: how long one decision waits for Redis.
    pub redis_timeout: Option<Duration>,
    /// `replicas`: how many replicas share a global limiter's quota.
    pub replicas: Option<u32>,
}

impl RateSettings {
    /// Every setting of `config`, as a section that sets them all; the settings of a global limiter's
    /// Redis only for a global one, with the secrets of its URL [masked](crate::redact::urls).
    #[must_use]
    pub fn of(config: &RateConfig) -> RateSettings {
        let global = config.scope == Scope::Global;
        RateSettings {
            per_second: Some((config.calls, config.period)),
            burst: Some(config.burst),
            wait: config.wait,
            scope: Some(config.scope),
            redis_url: config.redis_url.as_deref().filter(|_| global).map(|url| crate::redact::urls(url).into_owned()),
            on_unavailable: global.then_some(config.on_unavailable),
            redis_timeout: global.then_some(config.redis_timeout),
            replicas: global.then_some(config.replicas),
        }
    }

    /// Sets in `config` what these settings say, and nothing else. Like the macro's `rate = ..`, a
    /// `per_second` without a `burst` also sets the burst to the number of calls.
    pub fn apply_to(&self, config: &mut RateConfig) {
        if let Some((calls, period)) = self.per_second {
            config.calls = calls;
            config.period = period;
            config.burst = calls.max(1);
        }
        set(&mut config.burst, self.burst);
        if self.wait.is_some() {
            config.wait = self.wait;
        }
        set(&mut config.scope, self.scope);
        if self.redis_url.is_some() {
            config.redis_url.clone_from(&self.redis_url);
        }
        set(&mut config.on_unavailable, self.on_unavailable);
        set(&mut config.redis_timeout, self.redis_timeout);
        set(&mut config.replicas, self.replicas);
    }
}

/// The settings of a `[bulkhead.<name>]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkheadSettings {
    /// `max`: calls allowed at once.
    pub max: Option<u32>,
    /// `wait`: how long a call may wait for a permit.
    pub wait: Option<Duration>,
}

impl BulkheadSettings {
    /// Every setting of `config`, as a section that sets them all.
    #[must_use]
    pub fn of(config: &BulkheadConfig) -> BulkheadSettings {
        BulkheadSettings { max: Some(config.max), wait: config.wait }
    }

    /// Sets in `config` what these settings say, and nothing else.
    pub fn apply_to(&self, config: &mut BulkheadConfig) {
        set(&mut config.max, self.max);
        if self.wait.is_some() {
            config.wait = self.wait;
        }
    }
}

/// The settings of a `[retry.<name>]` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetrySettings {
    /// `attempts`: retries after the first attempt (1 to 100).
    pub attempts: Option<u32>,
    /// `backoff`: the delay before the first retry; it doubles for each further one.
    pub backoff: Option<Duration>,
    /// `max_backoff`: the largest delay between two attempts.
    pub max_backoff: Option<Duration>,
    /// `jitter`: whether delays are drawn at random between half their value and their value.
    pub jitter: Option<bool>,
    /// `budget_ratio`: the share of a retry each call adds to the budget (0.0 to 1.0).
    pub budget_ratio: Option<f64>,
    /// `budget_reserve`: retries the budget allows before any call has added to it.
    pub budget_reserve: Option<u32>,
}

impl RetrySettings {
    /// Every setting of `config`, as a section that sets them all.
    #[must_use]
    pub fn of(config: &RetryConfig) -> RetrySettings {
        RetrySettings {
            attempts: Some(config.attempts),
            backoff: Some(config.backoff),
            max_backoff: Some(config.max_backoff),
            jitter: Some(config.jitter),
            budget_ratio: Some(config.budget_ratio),
            budget_reserve: Some(config.budget_reserve),
        }
    }

    /// Sets in `config` what these settings say, and nothing else.
    pub fn apply_to(&self, config: &mut RetryConfig) {
        set(&mut config.attempts, self.attempts);
        set(&mut config.backoff, self.backoff);
        set(&mut config.max_backoff, self.max_backoff);
        set(&mut config.jitter, self.jitter);
        set(&mut config.budget_ratio, self.budget_ratio);
        set(&mut config.budget_reserve, self.budget_reserve);
    }
}

pub(super) fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

/// The keys of a section: what the readers, the environment and the renderer need to read and write one
/// section's values.
pub(super) trait Keys: Default + Clone {
    /// The keys, in the order they are documented and rendered.
    const KEYS: &'static [&'static str];

    /// Reads `key` (one of [`Keys::KEYS`]) from `raw`.
    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem>;

    /// A rule between keys that the section breaks, blamed on one of the keys `written` says the last
    /// source wrote.
    fn check(&self, _written: &dyn Fn(&str) -> bool) -> Option<(&'static str, Problem)> {
        None
    }

    /// The keys that are set, with their values in TOML.
    fn entries(&self) -> Vec<(&'static str, toml::Value)>;
}

/// A kind of guard section, one per name: `[breaker.<name>]` and the like.
pub(super) trait Section: Keys {
    /// The top-level table: `breaker`, `rate`, `bulkhead` or `retry`.
    const KIND: &'static str;
    /// What a section names, for messages: `breaker`, `rate limiter`, `bulkhead`, `retry policy`.
    const NOUN: &'static str;

    /// The sections of this kind in `config`.
    fn of(config: &Config) -> &BTreeMap<String, Self>;

    /// The sections of this kind in `config`, to change.
    fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self>;
}

pub(super) fn int(value: impl Into<i64>) -> toml::Value {
    toml::Value::Integer(value.into())
}

pub(super) fn push<T>(
    entries: &mut Vec<(&'static str, toml::Value)>,
    key: &'static str,
    value: Option<T>,
    to: impl Fn(T) -> toml::Value,
) {
    if let Some(value) = value {
        entries.push((key, to(value)));
    }
}

impl Section for BreakerSettings {
    const KIND: &'static str = "breaker";
    const NOUN: &'static str = "breaker";

    fn of(config: &Config) -> &BTreeMap<String, Self> {
        &config.breaker
    }

    fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.breaker
    }
}

impl Keys for BreakerSettings {
    const KEYS: &'static [&'static str] = &[
        "failure_rate",
        "slow_rate",
        "slow_call",
        "window",
        "window_kind",
        "min_calls",
        "open_for",
        "half_open_calls",
        "consecutive_failures",
        "extend_open_on_failure",
    ];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        match key {
            "failure_rate" => self.failure_rate = Some(value::whole(raw, 1, 100u8)?),
            "slow_rate" => self.slow_rate = Some(value::whole(raw, 1, 100u8)?),
            "slow_call" => self.slow_call = Some(value::duration(raw)?),
            "window" => self.window = Some(value::whole(raw, 1, MAX_WINDOW)?),
            "window_kind" => self.window_kind = Some(value::window_kind(raw)?),
            "min_calls" => self.min_calls = Some(value::whole(raw, 1, u32::MAX)?),
            "open_for" => self.open_for = Some(value::duration(raw)?),
            "half_open_calls" => self.half_open_calls = Some(value::whole(raw, 1, u32::MAX)?),
            "consecutive_failures" => self.consecutive_failures = Some(value::whole(raw, 1, u32::MAX)?),
            "extend_open_on_failure" => self.extend_open_on_failure = Some(value::boolean(raw)?),
            _ => unreachable!("`{key}` is not a breaker key"),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        let mut entries = Vec::new();
        push(&mut entries, "failure_rate", self.failure_rate, int);
        push(&mut entries, "slow_rate", self.slow_rate, int);
        push(&mut entries, "slow_call", self.slow_call, value::duration_value);
        push(&mut entries, "window", self.window, int);
        push(&mut entries, "window_kind", self.window_kind, |kind| toml::Value::String(kind.as_str().to_owned()));
        push(&mut entries, "min_calls", self.min_calls, int);
        push(&mut entries, "open_for", self.open_for, value::duration_value);
        push(&mut entries, "half_open_calls", self.half_open_calls, int);
        push(&mut entries, "consecutive_failures", self.consecutive_failures, int);
        push(&mut entries, "extend_open_on_failure", self.extend_open_on_failure, toml::Value::Boolean);
        entries
    }
}

impl Section for RateSettings {
    const KIND: &'static str = "rate";
    const NOUN: &'static str = "rate limiter";

    fn of(config: &Config) -> &BTreeMap<String, Self> {
        &config.rate
    }

    fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.rate
    }
}

impl Keys for RateSettings {
    const KEYS: &'static [&'static str] =
        &["per_second", "burst", "wait", "scope", "redis_url", "on_unavailable", "redis_timeout", "replicas"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        match key {
            "per_second" => self.per_second = Some(value::rate(raw)?),
            "burst" => self.burst = Some(value::whole(raw, 1, u32::MAX)?),
            "wait" => self.wait = Some(value::duration(raw)?),
            "scope" => self.scope = Some(value::scope(raw)?),
            "redis_url" => self.redis_url = Some(value::redis_url(raw)?),
            "on_unavailable" => self.on_unavailable = Some(value::on_unavailable(raw)?),
            "redis_timeout" => self.redis_timeout = Some(value::duration(raw)?),
            "replicas" => self.replicas = Some(value::whole(raw, 1, u32::MAX)?),
            _ => unreachable!("`{key}` is not a rate key"),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        let text = |text: &str| toml::Value::String(text.to_owned());
        let mut entries = Vec::new();
        push(&mut entries, "per_second", self.per_second, value::rate_value);
        push(&mut entries, "burst", self.burst, int);
        push(&mut entries, "wait", self.wait, value::duration_value);
        push(&mut entries, "scope", self.scope, |scope| text(scope.as_str()));
        push(&mut entries, "redis_url", self.redis_url.as_deref(), |url| text(&crate::redact::urls(url)));
        push(&mut entries, "on_unavailable", self.on_unavailable, |policy| text(policy.as_str()));
        push(&mut entries, "redis_timeout", self.redis_timeout, value::duration_value);
        push(&mut entries, "replicas", self.replicas, int);
        entries
    }
}

impl Section for BulkheadSettings {
    const KIND: &'static str = "bulkhead";
    const NOUN: &'static str = "bulkhead";

    fn of(config: &Config) -> &BTreeMap<String, Self> {
        &config.bulkhead
    }

    fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.bulkhead
    }
}

impl Keys for BulkheadSettings {
    const KEYS: &'static [&'static str] = &["max", "wait"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        match key {
            "max" => self.max = Some(value::whole(raw, 1, u32::MAX)?),
            "wait" => self.wait = Some(value::duration(raw)?),
            _ => unreachable!("`{key}` is not a bulkhead key"),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        let mut entries = Vec::new();
        push(&mut entries, "max", self.max, int);
        push(&mut entries, "wait", self.wait, value::duration_value);
        entries
    }
}

impl Section for RetrySettings {
    const KIND: &'static str = "retry";
    const NOUN: &'static str = "retry policy";

    fn of(config: &Config) -> &BTreeMap<String, Self> {
        &config.retry
    }

    fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.retry
    }
}

impl Keys for RetrySettings {
    const KEYS: &'static [&'static str] =
        &["attempts", "backoff", "max_backoff", "jitter", "budget_ratio", "budget_reserve"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        match key {
            "attempts" => self.attempts = Some(value::whole(raw, 1, 100u32)?),
            "backoff" => self.backoff = Some(value::duration(raw)?),
            "max_backoff" => self.max_backoff = Some(value::duration(raw)?),
            "jitter" => self.jitter = Some(value::boolean(raw)?),
            "budget_ratio" => self.budget_ratio = Some(value::fraction(raw)?),
            "budget_reserve" => self.budget_reserve = Some(value::whole(raw, 1, u32::MAX)?),
            _ => unreachable!("`{key}` is not a retry key"),
        }
        Ok(())
    }

    fn check(&self, written: &dyn Fn(&str) -> bool) -> Option<(&'static str, Problem)> {
        let (backoff, max_backoff) = (self.backoff?, self.max_backoff?);
        if max_backoff >= backoff {
            return None;
        }
        Some(if written("max_backoff") || !written("backoff") {
            let problem = format!("is shorter than backoff ({})", humantime::format_duration(backoff));
            ("max_backoff", Problem::new(problem, "a duration at least as long as backoff"))
        } else {
            let problem = format!("is longer than max_backoff ({})", humantime::format_duration(max_backoff));
            ("backoff", Problem::new(problem, "a duration no longer than max_backoff"))
        })
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        let mut entries = Vec::new();
        push(&mut entries, "attempts", self.attempts, int);
        push(&mut entries, "backoff", self.backoff, value::duration_value);
        push(&mut entries, "max_backoff", self.max_backoff, value::duration_value);
        push(&mut entries, "jitter", self.jitter, toml::Value::Boolean);
        push(&mut entries, "budget_ratio", self.budget_ratio, toml::Value::Float);
        push(&mut entries, "budget_reserve", self.budget_reserve, int);
        entries
    }
}
