//! The settings of a `[bulkhead.<name>]` section: each key optional, only those written change a bulkhead.

use std::time::Duration;

use super::BulkheadConfig;
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
