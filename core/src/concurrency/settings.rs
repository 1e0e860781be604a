//! The settings of a `[concurrency.<name>]` section: each key optional, only those written change a limit.

use std::sync::OnceLock;
use std::time::Duration;

use hardened_schema::{self as schema, Value};

use super::{Algorithm, ConcurrencyConfig, Limit};
use crate::keys::value::{self, Problem, Raw};
use crate::keys::{Keys, config_keys, int, not_a_config_key, push};
use crate::support::overlay;

/// The settings of a `[concurrency.<name>]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConcurrencySettings {
    /// `limit`: calls in flight at once, or the algorithm that adapts it.
    pub limit: Option<Limit>,
    /// `wait`: how long a call may queue for its turn.
    pub wait: Option<Duration>,
    /// `min`: the lowest an adaptive limit goes.
    pub min: Option<u32>,
    /// `max`: the highest an adaptive limit goes.
    pub max: Option<u32>,
}

impl ConcurrencySettings {
    /// A section that sets nothing: what the attribute's settings start from
    /// (`..ConcurrencySettings::UNSET`).
    pub const UNSET: ConcurrencySettings = ConcurrencySettings { limit: None, wait: None, min: None, max: None };

    /// Every setting of `config`, as a section that sets them all.
    #[must_use]
    pub fn of(config: &ConcurrencyConfig) -> ConcurrencySettings {
        ConcurrencySettings {
            limit: Some(config.limit),
            wait: Some(config.wait),
            min: Some(config.min),
            max: Some(config.max),
        }
    }

    /// Sets in `config` what these settings say, and nothing else.
    pub fn apply_to(&self, config: &mut ConcurrencyConfig) {
        overlay(&mut config.limit, self.limit);
        overlay(&mut config.wait, self.wait);
        overlay(&mut config.min, self.min);
        overlay(&mut config.max, self.max);
    }
}

impl Keys for ConcurrencySettings {
    fn keys() -> &'static [&'static str] {
        static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
        config_keys(&schema::concurrency::KIND, &KEYS)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        use schema::concurrency::Key;
        let Some(found) = Key::from_name(key) else { not_a_config_key(&schema::concurrency::KIND, key) };
        match found {
            Key::Limit => self.limit = Some(limit(raw, found.spec())?),
            Key::Wait => self.wait = Some(value::duration(raw)?),
            Key::Min => self.min = Some(value::whole(raw, found.spec())?),
            Key::Max => self.max = Some(value::whole(raw, found.spec())?),
            Key::Name => not_a_config_key(&schema::concurrency::KIND, key),
        }
        Ok(())
    }

    fn check(&self, written: &dyn Fn(&str) -> bool) -> Option<(&'static str, Problem)> {
        use schema::concurrency::Key;
        let (min_key, max_key) = (Key::Min.name(), Key::Max.name());
        if let Some(Limit::Fixed(limit)) = self.limit
            && written(Key::Limit.name())
            && let Some(key) = [min_key, max_key].into_iter().find(|key| written(key))
        {
            let problem = format!("is set beside a fixed limit ({limit}), which it does not change");
            let allowed =
                format!("`limit` set to {} for a limit that adapts", Value::OneOf(schema::CONCURRENCY_ALGORITHMS));
            return Some((key, Problem::new(problem, allowed)));
        }
        let (min, max) = (self.min?, self.max?);
        if min <= max {
            return None;
        }
        Some(if written(max_key) || !written(min_key) {
            (max_key, Problem::new(format!("is below min ({min})"), format!("a whole number at least min ({min})")))
        } else {
            (min_key, Problem::new(format!("is above max ({max})"), format!("a whole number at most max ({max})")))
        })
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::concurrency::Key;
        let mut entries = Vec::new();
        push(&mut entries, Key::Limit.name(), self.limit, limit_value);
        push(&mut entries, Key::Wait.name(), self.wait, value::duration_value);
        push(&mut entries, Key::Min.name(), self.min, int);
        push(&mut entries, Key::Max.name(), self.max, int);
        entries
    }
}

/// `limit`: a whole number in the schema's range, or the word of an algorithm.
fn limit(raw: Raw<'_>, spec: &schema::Spec) -> Result<Limit, Problem> {
    Ok(match value::whole_or_word(raw, spec)? {
        Ok(fixed) => Limit::Fixed(fixed),
        Err(word) => Limit::Adaptive(
            Algorithm::from_word(word).unwrap_or_else(|| unreachable!("`{word}` is an algorithm of the schema")),
        ),
    })
}

fn limit_value(limit: Limit) -> toml::Value {
    match limit {
        Limit::Fixed(limit) => int(limit),
        Limit::Adaptive(algorithm) => toml::Value::String(algorithm.word().into()),
    }
}
