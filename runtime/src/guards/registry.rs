//! The registry of named guards, one per kind and name, and how a call site resolves its guards in it.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use super::names::DeclaredNames;
use super::sections::{self, GuardSections};
use super::site::{Declared, Resolved, Site, SiteGuards, sites};
use crate::breaker::{BreakerConfig, BreakerSettings, CircuitBreaker};
use crate::bulkhead::{Bulkhead, BulkheadConfig, BulkheadSettings};
use crate::clock::Clock;
use crate::rate_limit::{RateConfig, RateLimiter, RateSettings};
use crate::retry::{RetryConfig, RetryPolicy, RetrySettings};

/// One kind of guard, and how configuration layers over it: built-in default, then the file's
/// `[kind.default]`, then the literal of the function that made it, then the file's `[kind.<name>]`
/// (with the environment already merged into the file's sections).
pub(crate) trait GuardKind: Sized + Send + Sync + 'static {
    /// The settings the guard runs with.
    type Config: Default;
    /// One configuration section.
    type Settings: 'static;

    fn registry() -> &'static Registry<Self>;
    /// What a call site declares for this kind of guard.
    fn declared_by(guards: &'static SiteGuards) -> Option<&'static Declared<Self::Settings>>;
    fn sections(sections: &GuardSections) -> &BTreeMap<String, Self::Settings>;
    fn apply(settings: &Self::Settings, config: &mut Self::Config);
    fn build(name: &'static str, config: Self::Config) -> Self;
    fn retune(&self, config: &Self::Config);
    fn settings_of(&self) -> Self::Settings;
}

/// The settings for the guard `name` made from `literal`, under the configuration in force.
fn layered<K: GuardKind>(name: &str, literal: Option<&K::Settings>) -> K::Config {
    let installed = sections::installed();
    let sections = K::sections(&installed);
    let mut layered = K::Config::default();
    let layers = [sections.get(DEFAULT_SECTION), literal, sections.get(name)];
    for settings in layers.into_iter().flatten() {
        K::apply(settings, &mut layered);
    }
    layered
}

const DEFAULT_SECTION: &str = "default";

/// The literal settings of the first function that declares a guard of kind `K` called `name`.
fn declared_literal<K: GuardKind>(name: &str) -> Option<&'static K::Settings> {
    sites().iter().filter_map(Site::guards).find_map(|guards| {
        let declared = K::declared_by(guards)?;
        (guards.name_of(declared) == name).then_some(&declared.settings)
    })
}

struct Entry<K: 'static + GuardKind> {
    guard: &'static K,
    literal: Option<&'static K::Settings>,
}

/// Registered guards of one kind, by name.
pub(crate) struct Registry<K: 'static + GuardKind> {
    guards: RwLock<BTreeMap<&'static str, Entry<K>>>,
}

impl<K: GuardKind> Registry<K> {
    const fn new() -> Registry<K> {
        Registry { guards: RwLock::new(BTreeMap::new()) }
    }

    /// The guard called `name`, made with `literal` under the configuration in force if there is none yet;
    /// without a literal, with that of a function declaring the name, if one does. Guards live for the
    /// whole process.
    fn get_or_make(&self, name: &str, literal: Option<&'static K::Settings>) -> &'static K {
        if let Some(entry) = self.guards.read().unwrap_or_else(PoisonError::into_inner).get(name) {
            return entry.guard;
        }
        let mut guards = self.guards.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = guards.get(name) {
            return entry.guard;
        }
        let literal = literal.or_else(|| declared_literal::<K>(name));
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let guard: &'static K = Box::leak(Box::new(K::build(name, layered::<K>(name, literal))));
        guards.insert(name, Entry { guard, literal });
        guard
    }

    fn all(&self) -> Vec<&'static K> {
        self.guards.read().unwrap_or_else(PoisonError::into_inner).values().map(|entry| entry.guard).collect()
    }

    /// Applies the configuration in force to every guard of this kind.
    fn retune_all(&self) {
        for (name, entry) in self.guards.read().unwrap_or_else(PoisonError::into_inner).iter() {
            entry.guard.retune(&layered::<K>(name, entry.literal));
        }
    }

    /// The settings every guard of this kind runs with, as configuration sections.
    fn effective(&self) -> BTreeMap<String, K::Settings> {
        self.guards
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, entry)| ((*name).to_owned(), entry.guard.settings_of()))
            .collect()
    }
}

static BREAKERS: Registry<CircuitBreaker> = Registry::new();
static RATE_LIMITERS: Registry<RateLimiter> = Registry::new();
static BULKHEADS: Registry<Bulkhead> = Registry::new();
static RETRY_POLICIES: Registry<RetryPolicy> = Registry::new();

impl GuardKind for CircuitBreaker {
    type Config = BreakerConfig;
    type Settings = BreakerSettings;

    fn registry() -> &'static Registry<Self> {
        &BREAKERS
    }
    fn declared_by(guards: &'static SiteGuards) -> Option<&'static Declared<Self::Settings>> {
        guards.breaker_declared.as_ref()
    }
    fn sections(sections: &GuardSections) -> &BTreeMap<String, BreakerSettings> {
        &sections.breaker
    }
    fn apply(settings: &BreakerSettings, config: &mut BreakerConfig) {
        settings.apply_to(config);
    }
    fn build(name: &'static str, config: BreakerConfig) -> Self {
        CircuitBreaker::new(name, config, Clock::system())
    }
    fn retune(&self, config: &BreakerConfig) {
        if !CircuitBreaker::retune(self, config) {
            tracing::warn!(
                breaker = self.name(),
                "a new breaker window size or kind takes effect at the next restart; the other settings apply now"
            );
        }
    }
    fn settings_of(&self) -> BreakerSettings {
        BreakerSettings::of(&self.config())
    }
}

impl GuardKind for RateLimiter {
    type Config = RateConfig;
    type Settings = RateSettings;

    fn registry() -> &'static Registry<Self> {
        &RATE_LIMITERS
    }
    fn declared_by(guards: &'static SiteGuards) -> Option<&'static Declared<Self::Settings>> {
        guards.rate_declared.as_ref()
    }
    fn sections(sections: &GuardSections) -> &BTreeMap<String, RateSettings> {
        &sections.rate
    }
    fn apply(settings: &RateSettings, config: &mut RateConfig) {
        settings.apply_to(config);
    }
    fn build(name: &'static str, config: RateConfig) -> Self {
        RateLimiter::new(name, config, Clock::system())
    }
    fn retune(&self, config: &RateConfig) {
        if !RateLimiter::retune(self, config) {
            tracing::warn!(
                rate_limiter = self.name(),
                "a new rate limiter scope or Redis URL takes effect at the next restart; the other settings apply now"
            );
        }
    }
    fn settings_of(&self) -> RateSettings {
        RateSettings::of(&self.config())
    }
}

impl GuardKind for Bulkhead {
    type Config = BulkheadConfig;
    type Settings = BulkheadSettings;

    fn registry() -> &'static Registry<Self> {
        &BULKHEADS
    }
    fn declared_by(guards: &'static SiteGuards) -> Option<&'static Declared<Self::Settings>> {
        guards.bulkhead_declared.as_ref()
    }
    fn sections(sections: &GuardSections) -> &BTreeMap<String, BulkheadSettings> {
        &sections.bulkhead
    }
    fn apply(settings: &BulkheadSettings, config: &mut BulkheadConfig) {
        settings.apply_to(config);
    }
    fn build(name: &'static str, config: BulkheadConfig) -> Self {
        Bulkhead::new(name, config)
    }
    fn retune(&self, config: &BulkheadConfig) {
        Bulkhead::retune(self, config);
    }
    fn settings_of(&self) -> BulkheadSettings {
        BulkheadSettings::of(&self.config())
    }
}

impl GuardKind for RetryPolicy {
    type Config = RetryConfig;
    type Settings = RetrySettings;

    fn registry() -> &'static Registry<Self> {
        &RETRY_POLICIES
    }
    fn declared_by(guards: &'static SiteGuards) -> Option<&'static Declared<Self::Settings>> {
        guards.retry_declared.as_ref()
    }
    fn sections(sections: &GuardSections) -> &BTreeMap<String, RetrySettings> {
        &sections.retry
    }
    fn apply(settings: &RetrySettings, config: &mut RetryConfig) {
        settings.apply_to(config);
    }
    fn build(name: &'static str, config: RetryConfig) -> Self {
        RetryPolicy::new(name, config)
    }
    fn retune(&self, config: &RetryConfig) {
        RetryPolicy::retune(self, config);
    }
    fn settings_of(&self) -> RetrySettings {
        RetrySettings::of(&self.config())
    }
}

/// The circuit breaker called `name`, made from the configuration if no function made it yet.
pub fn breaker(name: &str) -> &'static CircuitBreaker {
    BREAKERS.get_or_make(name, None)
}

/// The rate limiter called `name`, made from the configuration if no function made it yet.
pub fn rate_limiter(name: &str) -> &'static RateLimiter {
    RATE_LIMITERS.get_or_make(name, None)
}

/// The bulkhead called `name`, made from the configuration if no function made it yet.
pub fn bulkhead(name: &str) -> &'static Bulkhead {
    BULKHEADS.get_or_make(name, None)
}

/// The retry policy called `name`, made from the configuration if no function made it yet.
pub fn retry_policy(name: &str) -> &'static RetryPolicy {
    RETRY_POLICIES.get_or_make(name, None)
}

/// Every breaker made so far.
pub fn breakers() -> Vec<&'static CircuitBreaker> {
    BREAKERS.all()
}

/// Every rate limiter made so far.
pub fn rate_limiters() -> Vec<&'static RateLimiter> {
    RATE_LIMITERS.all()
}

/// Every bulkhead made so far.
pub fn bulkheads() -> Vec<&'static Bulkhead> {
    BULKHEADS.all()
}

/// Every retry policy made so far.
pub fn retry_policies() -> Vec<&'static RetryPolicy> {
    RETRY_POLICIES.all()
}

/// Makes every guard that some function declares, so that each exists (and has metrics) from startup.
pub(crate) fn resolve_declared() {
    for site in sites() {
        if let Some(guards) = site.guards() {
            guards.resolve_all();
        }
    }
}

/// Makes `sections` the configuration in force and applies it to every guard, keeping their state and
/// permits; guards made later are made with it.
pub(crate) fn configure(sections: GuardSections) {
    sections::install(sections);
    retune_all();
}

/// Applies the configuration in force to every guard, keeping their state and permits.
fn retune_all() {
    BREAKERS.retune_all();
    RATE_LIMITERS.retune_all();
    BULKHEADS.retune_all();
    RETRY_POLICIES.retune_all();
}

/// The settings every guard runs with, as configuration sections.
pub(crate) fn effective() -> GuardSections {
    resolve_declared();
    GuardSections {
        breaker: BREAKERS.effective(),
        rate: RATE_LIMITERS.effective(),
        bulkhead: BULKHEADS.effective(),
        retry: RETRY_POLICIES.effective(),
    }
}

/// The names of the guards functions declare, by kind; unnamed guards as `module::function`.
pub(crate) fn declared_names() -> DeclaredNames {
    let mut declared = DeclaredNames::default();
    for guards in sites().iter().filter_map(Site::guards) {
        guards.declare(&mut declared);
    }
    for names in [&mut declared.breaker, &mut declared.rate, &mut declared.bulkhead, &mut declared.retry] {
        names.sort();
        names.dedup();
    }
    declared
}

impl SiteGuards {
    /// The name a declared guard is registered under: its own, or `module::function`.
    fn name_of<S>(&self, declared: &Declared<S>) -> String {
        declared.name.map_or_else(|| format!("{}::{}", self.site.module(), self.site.name()), ToOwned::to_owned)
    }

    fn make<K: GuardKind>(&'static self, declared: Option<&'static Declared<K::Settings>>) -> Option<&'static K> {
        declared.map(|declared| K::registry().get_or_make(&self.name_of(declared), Some(&declared.settings)))
    }

    /// Every guard of the site, made on first use.
    #[inline]
    pub(crate) fn resolved(&'static self) -> Resolved {
        *self.resolved.get_or_init(|| Resolved {
            breaker: self.make(self.breaker_declared.as_ref()).inspect(|breaker: &&CircuitBreaker| {
                breaker.count_in(self.site);
            }),
            rate: self.make(self.rate_declared.as_ref()),
            bulkhead: self.make(self.bulkhead_declared.as_ref()),
            retry: self.make(self.retry_declared.as_ref()),
        })
    }

    /// The site's breaker, made on first use.
    #[inline]
    pub fn breaker(&'static self) -> Option<&'static CircuitBreaker> {
        self.resolved().breaker
    }

    /// The site's rate limiter.
    #[inline]
    pub fn rate_limiter(&'static self) -> Option<&'static RateLimiter> {
        self.resolved().rate
    }

    /// The site's bulkhead.
    #[inline]
    pub fn bulkhead(&'static self) -> Option<&'static Bulkhead> {
        self.resolved().bulkhead
    }

    /// The site's retry policy.
    #[inline]
    pub fn retry(&'static self) -> Option<&'static RetryPolicy> {
        self.resolved().retry
    }

    /// Makes every guard the site names, so their metrics exist before the first call.
    pub fn resolve_all(&'static self) {
        self.resolved();
    }

    /// The names this site declares, added to `declared`.
    fn declare(&self, declared: &mut DeclaredNames) {
        if let Some(breaker) = &self.breaker_declared {
            declared.breaker.push(self.name_of(breaker));
        }
        if let Some(rate) = &self.rate_declared {
            declared.rate.push(self.name_of(rate));
        }
        if let Some(bulkhead) = &self.bulkhead_declared {
            declared.bulkhead.push(self.name_of(bulkhead));
        }
        if let Some(retry) = &self.retry_declared {
            declared.retry.push(self.name_of(retry));
        }
    }
}
