//! The settings of a `[retry.<name>]` section: each key optional, only those written change a policy.

use std::time::Duration;

use super::RetryConfig;
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
