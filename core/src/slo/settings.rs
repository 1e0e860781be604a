//! The numbers of an objective: those a function writes in `slo(..)`, and those of a `[slo.<name>]`
//! section; each optional, only those written change the objective.

use std::sync::OnceLock;
use std::time::Duration;

use hardened_schema as schema;

use crate::keys::value::{self, Problem, Raw};
use crate::keys::{Keys, config_keys, not_a_config_key, push};

/// The numbers of an objective, as one source writes them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SloSettings {
    /// `success`: the percentage of calls that must succeed.
    pub success: Option<f64>,
    /// `latency`: the threshold a call's duration is judged against.
    pub latency: Option<Duration>,
    /// `latency_target`: the percentage of calls that must finish within `latency`.
    pub latency_target: Option<f64>,
}

impl SloSettings {
    /// Numbers that set nothing: what the attribute's start from (`..SloSettings::UNSET`).
    pub const UNSET: SloSettings = SloSettings { success: None, latency: None, latency_target: None };

    /// Whether these settings set nothing.
    #[must_use]
    pub fn is_unset(&self) -> bool {
        *self == SloSettings::UNSET
    }

    /// These settings with what `over` sets in place of theirs.
    #[must_use]
    pub fn layered(self, over: &SloSettings) -> SloSettings {
        SloSettings {
            success: over.success.or(self.success),
            latency: over.latency.or(self.latency),
            latency_target: over.latency_target.or(self.latency_target),
        }
    }
}

impl Keys for SloSettings {
    fn keys() -> &'static [&'static str] {
        static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
        config_keys(&schema::slo::KIND, &KEYS)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        use schema::slo::Key;
        let Some(found) = Key::from_name(key) else { not_a_config_key(&schema::slo::KIND, key) };
        match found {
            Key::Success => self.success = Some(value::percent(raw)?),
            Key::Latency => self.latency = Some(value::duration(raw)?),
            Key::LatencyTarget => self.latency_target = Some(value::percent(raw)?),
            Key::Name => not_a_config_key(&schema::slo::KIND, key),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::slo::Key;
        let mut entries = Vec::new();
        push(&mut entries, Key::Success.name(), self.success, toml::Value::Float);
        push(&mut entries, Key::Latency.name(), self.latency, value::duration_value);
        push(&mut entries, Key::LatencyTarget.name(), self.latency_target, toml::Value::Float);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_above_zero_and_below_a_hundred() {
        let mut settings = SloSettings::default();
        assert_eq!(settings.set("success", Raw::Env("99.9")), Ok(()));
        assert_eq!(settings.success, Some(99.9));
        for bad in ["100", "0", "-1", "NaN", "most"] {
            assert!(settings.set("success", Raw::Env(bad)).is_err(), "{bad}");
        }
        assert_eq!(settings.set("latency", Raw::Env("2s")), Ok(()));
        assert_eq!(settings.latency, Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_later_source_replaces_only_what_it_sets() {
        let declared = SloSettings { success: Some(99.0), latency: Some(Duration::from_secs(2)), latency_target: None };
        let configured = SloSettings { success: Some(99.9), ..SloSettings::UNSET };
        let layered = declared.layered(&configured);
        assert_eq!(layered.success, Some(99.9));
        assert_eq!(layered.latency, Some(Duration::from_secs(2)));
        assert!(SloSettings::UNSET.is_unset());
    }
}
