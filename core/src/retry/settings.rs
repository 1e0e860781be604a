//! The settings of a `[retry.<name>]` section: each key optional, only those written change a policy.

use std::sync::OnceLock;
use std::time::Duration;

use hardened_schema as schema;

use super::RetryConfig;
use crate::keys::value::{self, Problem, Raw};
use crate::keys::{Keys, config_keys, int, not_a_config_key, push};
use crate::support::overlay;

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
    /// A section that sets nothing: what the attribute's settings start from (`..RetrySettings::UNSET`).
    pub const UNSET: RetrySettings = RetrySettings {
        attempts: None,
        backoff: None,
        max_backoff: None,
        jitter: None,
        budget_ratio: None,
        budget_reserve: None,
    };

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
        overlay(&mut config.attempts, self.attempts);
        overlay(&mut config.backoff, self.backoff);
        overlay(&mut config.max_backoff, self.max_backoff);
        overlay(&mut config.jitter, self.jitter);
        overlay(&mut config.budget_ratio, self.budget_ratio);
        overlay(&mut config.budget_reserve, self.budget_reserve);
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
