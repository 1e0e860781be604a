//! The registry of named guards, one per kind and name, and how a call site resolves its guards in it.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use super::held::HELD;
use super::kinds::guard_kinds;
use super::names::DeclaredNames;
use super::sections::{self, GuardSections};
use super::site::{Declared, Resolved, Site, SiteGuards, sites};
use crate::kind::GuardKind;

/// A kind of guard in the list of kinds: where its registry, its declarations and its sections are.
pub(crate) trait Listed: GuardKind {
    /// The registered guards of this kind.
    fn registry() -> &'static Registry<Self>;
    /// What a call site declares for this kind of guard.
    fn declared_by(guards: &'static SiteGuards) -> Option<&'static Declared<Self::Settings>>;
    /// The configured sections of this kind.
    fn sections(sections: &GuardSections) -> &BTreeMap<String, Self::Settings>;
}

/// The settings for the guard `name` made from `literal`, under the configuration in force.
fn layered<K: Listed>(name: &str, literal: Option<&K::Settings>) -> K::Config {
    let installed = sections::installed();
    let sections = K::sections(&installed);
    let mut layered = K::Config::default();
    let layers = [sections.get(DEFAULT_SECTION), literal, sections.get(name)];
    for settings in layers.into_iter().flatten() {
        K::layer(settings, &mut layered);
    }
    layered
}

const DEFAULT_SECTION: &str = "default";

/// The literal settings of the first function that declares a guard of kind `K` called `name`.
fn declared_literal<K: Listed>(name: &str) -> Option<&'static K::Settings> {
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

impl<K: 'static + GuardKind> std::fmt::Debug for Registry<K> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let guards = self.guards.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        formatter.debug_struct("Registry").field("names", &guards.keys().collect::<Vec<_>>()).finish()
    }
}

impl<K: Listed> Registry<K> {
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
            entry.guard.reconfigure(&layered::<K>(name, entry.literal));
        }
    }

    /// The settings every guard of this kind runs with, as configuration sections.
    fn effective(&self) -> BTreeMap<String, K::Settings> {
        self.guards
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, entry)| ((*name).to_owned(), entry.guard.settings()))
            .collect()
    }
}

macro_rules! registries {
    ($($field:ident: $guard:ty, $settings:ty, $on_site:ident, $one:ident, $all:ident;)*) => {
        $(
            impl Listed for $guard {
                fn registry() -> &'static Registry<Self> {
                    static REGISTRY: Registry<$guard> = Registry::new();
                    &REGISTRY
                }

                fn declared_by(guards: &'static SiteGuards) -> Option<&'static Declared<$settings>> {
                    guards.declared.$field.as_ref()
                }

                fn sections(sections: &GuardSections) -> &BTreeMap<String, $settings> {
                    &sections.$field
                }
            }

            #[doc = concat!("The `", stringify!($field), "` guard called `name`, made from the configuration if no ")]
            #[doc = "function made it yet."]
            pub fn $one(name: &str) -> &'static $guard {
                <$guard as Listed>::registry().get_or_make(name, None)
            }

            #[doc = concat!("Every `", stringify!($field), "` guard made so far.")]
            pub fn $all() -> Vec<&'static $guard> {
                <$guard as Listed>::registry().all()
            }
        )*

        /// Applies the configuration in force to every guard, keeping their state and permits.
        fn retune_all() {
            $( <$guard as Listed>::registry().retune_all(); )*
        }

        /// The settings every guard runs with, as configuration sections.
        pub fn effective() -> GuardSections {
            resolve_declared();
            GuardSections { $( $field: <$guard as Listed>::registry().effective(), )* }
        }

        impl Resolved {
            /// The guards given, one or none per kind, with the slots of those that hold a permit for the
            /// length of a call listed in the order of the list of kinds.
            pub(crate) fn of($( $field: Option<&'static $guard>, )*) -> Resolved {
                let mut resolved = Resolved { $( $field, )* held: [None; HELD], tokens: None, keyed: None };
                let mut held = resolved.held.iter_mut();
                $(
                    if let Some(slots) = resolved.$field.and_then(|guard| guard.slots()) {
                        *held.next().expect("every kind whose guards have slots says it holds them") = Some(slots);
                    }
                )*
                resolved
            }
        }

        impl SiteGuards {
            /// Every guard of the site, made on first use.
            #[inline]
            pub(crate) fn resolved(&'static self) -> &'static Resolved {
                self.resolved.get_or_init(|| {
                    let resolved = Resolved::of($( self.make(self.declared.$field.as_ref()), )*)
                        .per_key(self.takes_tokens, self.keyed_bulkhead);
                    // A breaker's verdicts are counted in the metric cells of the sites that use it.
                    if let Some(breaker) = resolved.breaker {
                        breaker.count_in(self.site);
                    }
                    // A hedged function's series exist, at zero, from the first scrape.
                    if let Some(hedge) = resolved.hedge {
                        hedge.count_for(self.site.name());
                    }
                    resolved
                })
            }

            $(
                #[doc = concat!("The site's `", stringify!($field), "` guard, made on first use.")]
                #[inline]
                pub fn $on_site(&'static self) -> Option<&'static $guard> {
                    self.resolved().$field
                }
            )*

            /// The names this site declares, added to `declared`.
            fn declare(&self, declared: &mut DeclaredNames) {
                $(
                    if let Some(guard) = &self.declared.$field {
                        declared.$field.push(self.name_of(guard));
                    }
                )*
            }
        }
    };
}

guard_kinds!(registries);

/// Makes every guard that some function declares, so that each exists (and has metrics) from startup.
pub fn resolve_declared() {
    for site in sites() {
        if let Some(guards) = site.guards() {
            guards.resolve_all();
        }
    }
}

/// Makes `sections` the configuration in force and applies it to every guard, keeping their state and
/// permits; guards made later are made with it.
pub fn configure(sections: GuardSections) {
    sections::install(sections);
    retune_all();
}

/// The names of the guards functions declare, by kind; unnamed guards as `module::function`.
pub fn declared_names() -> DeclaredNames {
    let mut declared = DeclaredNames::default();
    for guards in sites().iter().filter_map(Site::guards) {
        guards.declare(&mut declared);
    }
    super::names::add_chain_names(&mut declared);
    declared.sort();
    declared
}

impl SiteGuards {
    /// The name a declared guard is registered under: its own, or `module::function`.
    fn name_of<S>(&self, declared: &Declared<S>) -> String {
        declared.name.map_or_else(|| format!("{}::{}", self.site.module(), self.site.name()), ToOwned::to_owned)
    }

    fn make<K: Listed>(&'static self, declared: Option<&'static Declared<K::Settings>>) -> Option<&'static K> {
        declared.map(|declared| K::registry().get_or_make(&self.name_of(declared), Some(&declared.settings)))
    }

    /// Makes every guard the site names, so their metrics exist before the first call.
    pub fn resolve_all(&'static self) {
        self.resolved();
    }
}
