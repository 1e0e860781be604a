//! The settings of a `[concurrency.<name>]` section: each key optional, only those written change a limit.

use std::sync::OnceLock;
use std::time::Duration;

use hardened_schema as schema;

use super::ConcurrencyConfig;
use crate::keys::value::{self, Problem, Raw};
use crate::keys::{Keys, config_keys, int, not_a_config_key, push};
use crate::support::overlay;

/// The settings of a `[concurrency.<name>]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConcurrencySettings {
    /// `limit`: calls in flight at once.
    pub limit: Option<u32>,
    /// `wait`: how long a call may queue for its turn.
    pub wait: Option<Duration>,
}

impl ConcurrencySettings {
    /// A section that sets nothing: what the attribute's settings start from
    /// (`..ConcurrencySettings::UNSET`).
    pub const UNSET: ConcurrencySettings = ConcurrencySettings { limit: None, wait: None };

    /// Every setting of `config`, as a section that sets them all.
    #[must_use]
    pub fn of(config: &ConcurrencyConfig) -> ConcurrencySettings {
        ConcurrencySettings { limit: Some(config.limit), wait: Some(config.wait) }
    }

    /// Sets in `config` what these settings say, and nothing else.
    pub fn apply_to(&self, config: &mut ConcurrencyConfig) {
        overlay(&mut config.limit, self.limit);
        overlay(&mut config.wait, self.wait);
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
            Key::Limit => self.limit = Some(value::whole(raw, found.spec())?),
            Key::Wait => self.wait = Some(value::duration(raw)?),
            Key::Name => not_a_config_key(&schema::concurrency::KIND, key),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::concurrency::Key;
        let mut entries = Vec::new();
        push(&mut entries, Key::Limit.name(), self.limit, int);
        push(&mut entries, Key::Wait.name(), self.wait, value::duration_value);
        entries
    }
}
