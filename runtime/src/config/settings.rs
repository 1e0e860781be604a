//! The settings of one section (`[breaker.llm]`, `[rate.default]`, ...): each key is optional, and only
//! the keys written change a guard's configuration.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use hardened_schema::{self as schema, Kind};

use super::value::{self, Problem, Raw};
use super::{Config, DeclaredNames};
use crate::breaker::BreakerSettings;
use crate::bulkhead::BulkheadSettings;
use crate::rate_limit::RateSettings;
use crate::retry::RetrySettings;

/// The keys of a section: what the readers, the environment and the renderer need to read and write one
/// section's values.
pub(super) trait Keys: Default + Clone {
    /// The keys, in the order they are documented and rendered.
    fn keys() -> &'static [&'static str];

    /// Reads `key` (one of [`Keys::keys`]) from `raw`.
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
    /// The kind of guard, as the schema describes it.
    const SCHEMA: &'static Kind;
    /// The top-level table: `breaker`, `rate`, `bulkhead` or `retry`.
    const KIND: &'static str = Self::SCHEMA.name;
    /// What a section names, for messages: `breaker`, `rate limiter`, `bulkhead`, `retry policy`.
    const NOUN: &'static str = Self::SCHEMA.noun;

    /// The names functions declare for guards of this kind.
    fn declared(names: &DeclaredNames) -> &[String];

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

/// The keys of `kind` that the configuration accepts, in the schema's order: made once per kind.
fn config_keys(kind: &'static Kind, keys: &'static OnceLock<Vec<&'static str>>) -> &'static [&'static str] {
    keys.get_or_init(|| kind.keys.iter().filter(|spec| spec.accepted.in_config()).map(|spec| spec.name).collect())
}

/// Defines a guard section's place in [`Config`] and its schema.
macro_rules! section {
    ($settings:ty, $schema:path, $field:ident) => {
        impl Section for $settings {
            const SCHEMA: &'static Kind = &$schema;

            fn declared(names: &DeclaredNames) -> &[String] {
                &names.$field
            }

            fn of(config: &Config) -> &BTreeMap<String, Self> {
                &config.$field
            }

            fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
                &mut config.$field
            }
        }
    };
}

section!(BreakerSettings, schema::breaker::KIND, breaker);
section!(RateSettings, schema::rate::KIND, rate);
section!(BulkheadSettings, schema::bulkhead::KIND, bulkhead);
section!(RetrySettings, schema::retry::KIND, retry);

/// A key the configuration does not accept, which the readers never pass: they check against
/// [`Keys::keys`] first.
fn not_a_config_key(kind: &Kind, key: &str) -> ! {
    unreachable!("`{key}` is not a configuration key of {}", kind.name)
}

impl Keys for BreakerSettings {
    fn keys() -> &'static [&'static str] {
        static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
        config_keys(&schema::breaker::KIND, &KEYS)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        use schema::breaker::Key;
        let Some(found) = Key::from_name(key) else { not_a_config_key(&schema::breaker::KIND, key) };
        let spec = found.spec();
        match found {
            Key::FailureRate => self.failure_rate = Some(value::whole(raw, spec)?),
            Key::SlowRate => self.slow_rate = Some(value::whole(raw, spec)?),
            Key::SlowCall => self.slow_call = Some(value::duration(raw)?),
            Key::Window => self.window = Some(value::whole(raw, spec)?),
            Key::WindowKind => self.window_kind = Some(value::window_kind(raw, spec)?),
            Key::MinCalls => self.min_calls = Some(value::whole(raw, spec)?),
            Key::OpenFor => self.open_for = Some(value::duration(raw)?),
            Key::HalfOpenCalls => self.half_open_calls = Some(value::whole(raw, spec)?),
            Key::ConsecutiveFailures => self.consecutive_failures = Some(value::whole(raw, spec)?),
            Key::ExtendOpenOnFailure => self.extend_open_on_failure = Some(value::boolean(raw)?),
            Key::Name => not_a_config_key(&schema::breaker::KIND, key),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::breaker::Key;
        let mut entries = Vec::new();
        push(&mut entries, Key::FailureRate.name(), self.failure_rate, int);
        push(&mut entries, Key::SlowRate.name(), self.slow_rate, int);
        push(&mut entries, Key::SlowCall.name(), self.slow_call, value::duration_value);
        push(&mut entries, Key::Window.name(), self.window, int);
        push(&mut entries, Key::WindowKind.name(), self.window_kind, |kind| {
            toml::Value::String(kind.as_str().to_owned())
        });
        push(&mut entries, Key::MinCalls.name(), self.min_calls, int);
        push(&mut entries, Key::OpenFor.name(), self.open_for, value::duration_value);
        push(&mut entries, Key::HalfOpenCalls.name(), self.half_open_calls, int);
        push(&mut entries, Key::ConsecutiveFailures.name(), self.consecutive_failures, int);
        push(&mut entries, Key::ExtendOpenOnFailure.name(), self.extend_open_on_failure, toml::Value::Boolean);
        entries
    }
}

impl Keys for RateSettings {
    fn keys() -> &'static [&'static str] {
        static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
        config_keys(&schema::rate::KIND, &KEYS)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        use schema::rate::Key;
        let Some(found) = Key::from_name(key) else { not_a_config_key(&schema::rate::KIND, key) };
        let spec = found.spec();
        match found {
            Key::PerSecond => self.per_second = Some(value::rate(raw)?),
            Key::Burst => self.burst = Some(value::whole(raw, spec)?),
            Key::Wait => self.wait = Some(value::duration(raw)?),
            Key::Scope => self.scope = Some(value::scope(raw, spec)?),
            Key::RedisUrl => self.redis_url = Some(value::redis_url(raw)?),
            Key::OnUnavailable => self.on_unavailable = Some(value::on_unavailable(raw, spec)?),
            Key::RedisTimeout => self.redis_timeout = Some(value::duration(raw)?),
            Key::Replicas => self.replicas = Some(value::whole(raw, spec)?),
            Key::Name => not_a_config_key(&schema::rate::KIND, key),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::rate::Key;
        let text = |text: &str| toml::Value::String(text.to_owned());
        let mut entries = Vec::new();
        push(&mut entries, Key::PerSecond.name(), self.per_second, value::rate_value);
        push(&mut entries, Key::Burst.name(), self.burst, int);
        push(&mut entries, Key::Wait.name(), self.wait, value::duration_value);
        push(&mut entries, Key::Scope.name(), self.scope, |scope| text(scope.as_str()));
        push(&mut entries, Key::RedisUrl.name(), self.redis_url.as_deref(), |url| text(&crate::redact::urls(url)));
        push(&mut entries, Key::OnUnavailable.name(), self.on_unavailable, |policy| text(policy.as_str()));
        push(&mut entries, Key::RedisTimeout.name(), self.redis_timeout, value::duration_value);
        push(&mut entries, Key::Replicas.name(), self.replicas, int);
        entries
    }
}

impl Keys for BulkheadSettings {
    fn keys() -> &'static [&'static str] {
        static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
        config_keys(&schema::bulkhead::KIND, &KEYS)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        use schema::bulkhead::Key;
        let Some(found) = Key::from_name(key) else { not_a_config_key(&schema::bulkhead::KIND, key) };
        match found {
            Key::Max => self.max = Some(value::whole(raw, found.spec())?),
            Key::Wait => self.wait = Some(value::duration(raw)?),
            Key::Name => not_a_config_key(&schema::bulkhead::KIND, key),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::bulkhead::Key;
        let mut entries = Vec::new();
        push(&mut entries, Key::Max.name(), self.max, int);
        push(&mut entries, Key::Wait.name(), self.wait, value::duration_value);
        entries
    }
}

impl Keys for RetrySettings {
    fn keys() -> &'static [&'static str] {
        static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
        config_keys(&schema::retry::KIND, &KEYS)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        use schema::retry::Key;
        let Some(found) = Key::from_name(key) else { not_a_config_key(&schema::retry::KIND, key) };
        let spec = found.spec();
        match found {
            Key::Attempts => self.attempts = Some(value::whole(raw, spec)?),
            Key::Backoff => self.backoff = Some(value::duration(raw)?),
            Key::MaxBackoff => self.max_backoff = Some(value::duration(raw)?),
            Key::Jitter => self.jitter = Some(value::boolean(raw)?),
            Key::BudgetRatio => self.budget_ratio = Some(value::fraction(raw)?),
            Key::BudgetReserve => self.budget_reserve = Some(value::whole(raw, spec)?),
            Key::Name | Key::When => not_a_config_key(&schema::retry::KIND, key),
        }
        Ok(())
    }

    fn check(&self, written: &dyn Fn(&str) -> bool) -> Option<(&'static str, Problem)> {
        use schema::retry::Key;
        let (backoff, max_backoff) = (self.backoff?, self.max_backoff?);
        if max_backoff >= backoff {
            return None;
        }
        let (backoff_key, max_key) = (Key::Backoff.name(), Key::MaxBackoff.name());
        Some(if written(max_key) || !written(backoff_key) {
            let problem = format!("is shorter than {backoff_key} ({})", humantime::format_duration(backoff));
            (max_key, Problem::new(problem, format!("a duration at least as long as {backoff_key}")))
        } else {
            let problem = format!("is longer than {max_key} ({})", humantime::format_duration(max_backoff));
            (backoff_key, Problem::new(problem, format!("a duration no longer than {max_key}")))
        })
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::retry::Key;
        let mut entries = Vec::new();
        push(&mut entries, Key::Attempts.name(), self.attempts, int);
        push(&mut entries, Key::Backoff.name(), self.backoff, value::duration_value);
        push(&mut entries, Key::MaxBackoff.name(), self.max_backoff, value::duration_value);
        push(&mut entries, Key::Jitter.name(), self.jitter, toml::Value::Boolean);
        push(&mut entries, Key::BudgetRatio.name(), self.budget_ratio, toml::Value::Float);
        push(&mut entries, Key::BudgetReserve.name(), self.budget_reserve, int);
        entries
    }
}
