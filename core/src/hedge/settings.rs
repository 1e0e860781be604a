//! The settings of a `[hedge.<name>]` section: each key optional, only those written change a policy.

use std::sync::OnceLock;

use hardened_schema::{self as schema, Value};

use super::{After, HedgeConfig};
use crate::keys::value::{self, OUT_OF_RANGE, Problem, Raw};
use crate::keys::{Keys, config_keys, int, not_a_config_key, push};
use crate::support::overlay;

/// The settings of a `[hedge.<name>]` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HedgeSettings {
    /// `after`: how long the first attempt runs before another starts.
    pub after: Option<After>,
    /// `max`: extra attempts a call may start (1 to 3).
    pub max: Option<u32>,
    /// `budget_ratio`: the share of a hedge each call adds to the budget (0.0 to 1.0).
    pub budget_ratio: Option<f64>,
    /// `budget_reserve`: hedges the budget allows before any call has added to it.
    pub budget_reserve: Option<u32>,
}

impl HedgeSettings {
    /// A section that sets nothing: what the attribute's settings start from (`..HedgeSettings::UNSET`).
    pub const UNSET: HedgeSettings = HedgeSettings { after: None, max: None, budget_ratio: None, budget_reserve: None };

    /// Every setting of `config`, as a section that sets them all.
    #[must_use]
    pub fn of(config: &HedgeConfig) -> HedgeSettings {
        HedgeSettings {
            after: Some(config.after),
            max: Some(config.max),
            budget_ratio: Some(config.budget_ratio),
            budget_reserve: Some(config.budget_reserve),
        }
    }

    /// Sets in `config` what these settings say, and nothing else.
    pub fn apply_to(&self, config: &mut HedgeConfig) {
        overlay(&mut config.after, self.after);
        overlay(&mut config.max, self.max);
        overlay(&mut config.budget_ratio, self.budget_ratio);
        overlay(&mut config.budget_reserve, self.budget_reserve);
    }
}

/// `after`: a percentile (`"p95"`, `"p99.9"`) or a duration longer than zero (`"200ms"`).
fn after(raw: Raw<'_>) -> Result<After, Problem> {
    let allowed = || Value::Latency.to_string();
    let Some(text) = value::text_of(raw) else { return Err(Problem::new("is not a string", allowed())) };
    if text.starts_with('p') {
        let (low, high) = schema::HEDGE_PERCENTILES;
        return match schema::percentile(text) {
            Some(permille) if (low..=high).contains(&permille) => Ok(After::Percentile(permille)),
            Some(_) => Err(Problem::new(OUT_OF_RANGE, allowed())),
            None => Err(Problem::new("is not a percentile", allowed())),
        };
    }
    value::duration(raw).map(After::Fixed).map_err(|problem| Problem::new(problem.problem, allowed()))
}

impl Keys for HedgeSettings {
    fn keys() -> &'static [&'static str] {
        static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
        config_keys(&schema::hedge::KIND, &KEYS)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        use schema::hedge::Key;
        let Some(found) = Key::from_name(key) else { not_a_config_key(&schema::hedge::KIND, key) };
        let spec = found.spec();
        match found {
            Key::After => self.after = Some(after(raw)?),
            Key::Max => self.max = Some(value::whole(raw, spec)?),
            Key::BudgetRatio => self.budget_ratio = Some(value::fraction(raw)?),
            Key::BudgetReserve => self.budget_reserve = Some(value::whole(raw, spec)?),
            Key::Name | Key::Idempotent => not_a_config_key(&schema::hedge::KIND, key),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::hedge::Key;
        let mut entries = Vec::new();
        push(&mut entries, Key::After.name(), self.after, |after| toml::Value::String(after.to_string()));
        push(&mut entries, Key::Max.name(), self.max, int);
        push(&mut entries, Key::BudgetRatio.name(), self.budget_ratio, toml::Value::Float);
        push(&mut entries, Key::BudgetReserve.name(), self.budget_reserve, int);
        entries
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn after_is_a_percentile_or_a_duration() {
        assert_eq!(after(Raw::Env("p95")), Ok(After::Percentile(950)));
        assert_eq!(after(Raw::Env("p99.9")), Ok(After::Percentile(999)));
        assert_eq!(after(Raw::Env("200ms")), Ok(After::Fixed(Duration::from_millis(200))));
        assert_eq!(after(Raw::Env("p40")).map_err(|problem| problem.problem), Err(OUT_OF_RANGE.to_owned()));
        assert_eq!(after(Raw::Env("p9x")).map_err(|problem| problem.problem), Err("is not a percentile".to_owned()));
        assert!(after(Raw::Env("0s")).is_err());
        for after in [After::Percentile(950), After::Percentile(999), After::Fixed(Duration::from_millis(250))] {
            let written = after.to_string();
            assert_eq!(super::after(Raw::Env(&written)), Ok(after), "{written}");
        }
    }
}
