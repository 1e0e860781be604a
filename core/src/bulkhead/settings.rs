//! The settings of a `[bulkhead.<name>]` section: each key optional, only those written change a bulkhead.

use std::sync::OnceLock;
use std::time::Duration;

use hardened_schema as schema;

use super::BulkheadConfig;
use crate::keys::value::{self, Problem, Raw};
use crate::keys::{Keys, config_keys, int, not_a_config_key, push};
use crate::support::overlay;

/// The settings of a `[bulkhead.<name>]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkheadSettings {
    /// `max`: calls allowed at once.
    pub max: Option<u32>,
    /// `wait`: how long a call may wait for a permit.
    pub wait: Option<Duration>,
}

impl BulkheadSettings {
    /// A section that sets nothing: what the attribute's settings start from (`..BulkheadSettings::UNSET`).
    pub const UNSET: BulkheadSettings = BulkheadSettings { max: None, wait: None };

    /// Every setting of `config`, as a section that sets them all.
    #[must_use]
    pub fn of(config: &BulkheadConfig) -> BulkheadSettings {
        BulkheadSettings { max: Some(config.max), wait: config.wait }
    }

    /// Sets in `config` what these settings say, and nothing else.
    pub fn apply_to(&self, config: &mut BulkheadConfig) {
        overlay(&mut config.max, self.max);
        if self.wait.is_some() {
            config.wait = self.wait;
        }
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
            Key::Name | Key::Key => not_a_config_key(&schema::bulkhead::KIND, key),
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
