//! The settings of a `[breaker.<name>]` section: each key optional, only those written change a breaker.

use std::sync::OnceLock;
use std::time::Duration;

use hardened_schema::{self as schema, Spec};

use super::{BreakerConfig, WindowKind};
use crate::keys::value::{self, Problem, Raw};
use crate::keys::{Keys, config_keys, int, not_a_config_key, push};
use crate::support::overlay;

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
    /// A section that sets nothing: what the attribute's settings start from (`..BreakerSettings::UNSET`).
    pub const UNSET: BreakerSettings = BreakerSettings {
        failure_rate: None,
        slow_rate: None,
        slow_call: None,
        window: None,
        window_kind: None,
        min_calls: None,
        open_for: None,
        half_open_calls: None,
        consecutive_failures: None,
        extend_open_on_failure: None,
    };

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
        overlay(&mut config.failure_rate, self.failure_rate);
        overlay(&mut config.slow_rate, self.slow_rate);
        overlay(&mut config.slow_call, self.slow_call);
        overlay(&mut config.window, self.window);
        overlay(&mut config.window_kind, self.window_kind);
        overlay(&mut config.min_calls, self.min_calls);
        overlay(&mut config.open_for, self.open_for);
        overlay(&mut config.half_open_calls, self.half_open_calls);
        if self.consecutive_failures.is_some() {
            config.consecutive_failures = self.consecutive_failures;
        }
        overlay(&mut config.extend_open_on_failure, self.extend_open_on_failure);
    }
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
            Key::WindowKind => self.window_kind = Some(window_kind(raw, spec)?),
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

/// `"count"` or `"time"`, as `spec` lists them.
fn window_kind(raw: Raw<'_>, spec: &Spec) -> Result<WindowKind, Problem> {
    let wrong = || Problem::new("is not a window kind", spec.value.to_string());
    let text = match raw {
        Raw::Toml(toml::Value::String(text)) => text.as_str(),
        Raw::Toml(_) => return Err(wrong()),
        Raw::Env(text) => text.trim(),
    };
    match text {
        "count" => Ok(WindowKind::Count),
        "time" => Ok(WindowKind::Time),
        _ => Err(wrong()),
    }
}
