//! Bulkhead: a limit on concurrent calls, so one slow dependency cannot take every task and connection.
//! A call over the limit is refused at once, or after waiting up to `wait` when one is set.
//!
//! Its permits are [`Slots`], which the concurrency limit shares.

mod settings;

pub use self::settings::BulkheadSettings;

use std::fmt;
use std::time::Duration;

use crate::rejected::Rejected;
use crate::slots::{KeyedPermit, Permit, Slots};
use crate::support::key_hash::{LimitKey, key_hash};

/// Settings of one bulkhead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkheadConfig {
    /// Calls allowed at once.
    pub max: u32,
    /// How long a call may wait for a permit; `None` refuses at once.
    pub wait: Option<Duration>,
}

impl BulkheadConfig {
    /// At most `max` calls at once, refusing the next at once.
    #[must_use]
    pub fn new(max: u32) -> BulkheadConfig {
        BulkheadConfig { max, wait: None }
    }
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        BulkheadConfig::new(10)
    }
}

/// A bulkhead; shared by name between every function that names it.
pub struct Bulkhead {
    slots: Slots,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.name())
            .field("config", &self.config())
            .field("in_use", &self.slots.in_use())
            .finish_non_exhaustive()
    }
}

/// A bulkhead permit, given back when dropped: on completion, error, cancellation or panic alike.
pub type BulkheadPermit<'a> = Permit<'a>;

impl Bulkhead {
    /// A bulkhead; named bulkheads used by `#[hardened]` are made by the registry.
    #[must_use]
    #[allow(clippy::needless_pass_by_value, reason = "constructors take their settings by value, like builders")]
    pub fn new(name: &'static str, config: BulkheadConfig) -> Bulkhead {
        Bulkhead { slots: Slots::new(name, config.max, config.wait, |name| Rejected::BulkheadFull { name }) }
    }

    /// The bulkhead's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.slots.name()
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> BulkheadConfig {
        BulkheadConfig { max: self.slots.max(), wait: self.slots.wait() }
    }

    /// Applies new settings to the running bulkhead. Permits already out stay out: lowering `max` below
    /// the calls in flight refuses new calls until enough of them finish.
    pub fn retune(&self, config: &BulkheadConfig) {
        self.slots.retune(config.max, config.wait);
    }

    /// Permits free now.
    #[must_use]
    pub fn available(&self) -> u32 {
        self.slots.available()
    }

    /// Calls refused so far.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.slots.refused()
    }

    /// Permits held now: calls in flight through the bulkhead.
    #[must_use]
    pub fn in_use(&self) -> u32 {
        self.slots.in_use()
    }

    /// Calls waiting for a permit now (only with a `wait`).
    #[must_use]
    pub fn waiting(&self) -> u32 {
        self.slots.waiting()
    }

    /// Takes a permit if one is free.
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, Rejected> {
        self.slots.try_acquire()
    }

    /// Takes a permit, waiting up to the configured `wait` for one.
    pub async fn acquire(&self) -> Result<BulkheadPermit<'_>, Rejected> {
        self.slots.acquire().await
    }

    /// Takes a permit of `key` if it has fewer than `max` calls in flight: a limit for each key (a
    /// tenant, a user), apart from the bulkhead's own permits.
    ///
    /// # Errors
    ///
    /// [`Rejected::BulkheadFull`] when the key has `max` calls in flight.
    pub fn try_acquire_keyed<K: LimitKey>(&self, key: &K) -> Result<KeyedPermit<'_>, Rejected> {
        self.slots.try_acquire_keyed(key_hash(key))
    }

    /// Takes a permit of `key`, waiting up to the configured `wait` for one.
    ///
    /// # Errors
    ///
    /// [`Rejected::BulkheadFull`] when the key still has `max` calls in flight after the wait.
    pub async fn acquire_keyed<K: LimitKey>(&self, key: &K) -> Result<KeyedPermit<'_>, Rejected> {
        self.slots.acquire_keyed(key_hash(key)).await
    }

    /// Keys with calls in flight under keyed permits (`hardened_bulkhead_keys`).
    #[must_use]
    pub fn keys_in_flight(&self) -> usize {
        self.slots.keys_in_flight()
    }
}

use crate::kind::{Family, REJECTIONS, Report};

impl crate::kind::GuardKind for Bulkhead {
    type Config = BulkheadConfig;
    type Settings = BulkheadSettings;

    const SCHEMA: &'static hardened_schema::Kind = &hardened_schema::bulkhead::KIND;

    fn layer(settings: &BulkheadSettings, config: &mut BulkheadConfig) {
        settings.apply_to(config);
    }

    fn build(name: &'static str, config: BulkheadConfig) -> Bulkhead {
        Bulkhead::new(name, config)
    }

    fn reconfigure(&self, config: &BulkheadConfig) {
        self.retune(config);
    }

    fn settings(&self) -> BulkheadSettings {
        BulkheadSettings::of(&self.config())
    }

    const FAMILIES: &'static [&'static Family] = &[&AVAILABLE_FAMILY, &MAX_FAMILY, &KEYS_FAMILY];

    const HOLDS: bool = true;

    fn slots(&self) -> Option<&Slots> {
        Some(&self.slots)
    }

    fn report(&self, report: &mut Report) {
        let name = self.name();
        report.push(&AVAILABLE_FAMILY, [name], f64::from(self.available()));
        report.push(&MAX_FAMILY, [name], f64::from(self.config().max));
        report.push(&REJECTIONS, ["bulkhead", name], self.refused() as f64);
        // Only for a keyed bulkhead: the series says the bulkhead is keyed (which the alerts ask).
        if self.slots.is_keyed() {
            report.push(&KEYS_FAMILY, [name], self.keys_in_flight() as f64);
        }
    }
}

static AVAILABLE_FAMILY: Family = Family {
    name: "hardened_bulkhead_available_permits",
    help: "Free permits of a bulkhead.",
    counter: false,
    labels: &["name"],
};

static KEYS_FAMILY: Family = Family {
    name: "hardened_bulkhead_keys",
    help: "Keys with calls in flight under a keyed bulkhead (0 for one without a key).",
    counter: false,
    labels: &["name"],
};

static MAX_FAMILY: Family = Family {
    name: "hardened_bulkhead_max_permits",
    help: "Permits of a bulkhead in all.",
    counter: false,
    labels: &["name"],
};
