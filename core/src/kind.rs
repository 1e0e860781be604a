//! What every kind of named guard provides: how it is made and retuned from its settings, and which
//! configuration section describes it. Each kind implements [`GuardKind`] in its own folder; the registry
//! of named guards, the call sites and the configuration use them through it.

use std::fmt::Debug;

use hardened_schema::Kind;

use crate::keys::Keys;
use crate::slots::Slots;

/// One kind of named guard. Configuration layers over it: the built-in default ([`GuardKind::Config`]'s
/// `Default`), then the file's `[kind.default]`, then the literal of the function that made it, then the
/// file's `[kind.<name>]` (with the environment already merged into the file's sections).
pub trait GuardKind: Sized + Send + Sync + 'static {
    /// The settings the guard runs with.
    type Config: Default;
    /// One configuration section: each key optional.
    type Settings: Keys + Debug + PartialEq + Send + Sync + 'static;

    /// The kind's keys, as the schema describes them.
    const SCHEMA: &'static Kind;

    /// Sets in `config` what `settings` say, and nothing else.
    fn layer(settings: &Self::Settings, config: &mut Self::Config);

    /// A new guard called `name`, running with `config`.
    fn build(name: &'static str, config: Self::Config) -> Self;

    /// Applies `config` to the running guard, keeping its state; says so in the log when part of it waits
    /// for a restart.
    fn reconfigure(&self, config: &Self::Config);

    /// Every setting the guard runs with, as a section that sets them all.
    fn settings(&self) -> Self::Settings;

    /// Whether the guard holds a permit of its [`Slots`] for the length of each call: its part of the
    /// admission. The chain takes the permits of such kinds in the order of the list of kinds.
    const HOLDS: bool = false;

    /// The slots a call takes a permit of, for a kind that [`holds`](GuardKind::HOLDS) one.
    fn slots(&self) -> Option<&Slots> {
        None
    }

    /// The metric families the kind reports, besides [`REJECTIONS`].
    const FAMILIES: &'static [&'static Family];

    /// The guard's series, of [`GuardKind::FAMILIES`] and [`REJECTIONS`], at a scrape.
    fn report(&self, report: &mut Report);
}

/// A metric family a kind of guard reports, read from each guard at scrape time.
#[derive(Debug)]
pub struct Family {
    /// The family's name, such as `hardened_circuit_breaker_state`.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// A counter; otherwise a gauge.
    pub counter: bool,
    /// Its label names, in the order every series gives their values.
    pub labels: &'static [&'static str],
}

/// Calls refused by a guard, which every kind that refuses reports under its own `guard` label.
pub static REJECTIONS: Family = Family {
    name: "hardened_rejections_total",
    help: "Calls refused by a guard: breaker, rate_limiter, concurrency, bulkhead or timeout.",
    counter: true,
    labels: &["guard", "name"],
};

/// The series of one scrape: what each guard reports, before it becomes the exposition format.
#[derive(Debug, Default)]
pub struct Report {
    pub series: Vec<(&'static Family, Vec<String>, f64)>,
}

impl Report {
    /// One series of `family`, with its label values in the family's order.
    pub fn push<const N: usize>(&mut self, family: &'static Family, labels: [&str; N], value: f64) {
        debug_assert_eq!(family.labels.len(), N, "{} takes {} labels", family.name, family.labels.len());
        self.series.push((family, labels.iter().map(|label| (*label).to_owned()).collect(), value));
    }
}
