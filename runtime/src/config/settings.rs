//! The settings of one section (`[breaker.llm]`, `[rate.default]`, ...): each key is optional, and only
//! the keys written change a guard's configuration.

use std::collections::BTreeMap;

use super::Config;
use super::value::{self, Problem, Raw};
use crate::breaker::{BreakerSettings, MAX_WINDOW};
use crate::bulkhead::BulkheadSettings;
use crate::rate_limit::RateSettings;
use crate::retry::RetrySettings;

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
