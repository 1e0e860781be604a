//! The configuration sections the guards are layered with, as the configuration installed them last.
//!
//! The configuration pushes its sections here when it is installed, rather than the guards reading it:
//! the guards know nothing of files and the environment.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use super::kinds::guard_kinds;

macro_rules! guard_sections {
    ($($field:ident: $guard:ty, $settings:ty, $on_site:ident, $one:ident, $all:ident;)*) => {
        /// The configured sections of every kind of guard, by name; `default` applies to every guard of its
        /// kind.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct GuardSections {
            $( pub $field: BTreeMap<String, $settings>, )*
        }
    };
}

guard_kinds!(guard_sections);

static INSTALLED: LazyLock<RwLock<Arc<GuardSections>>> = LazyLock::new(RwLock::default);

/// The sections in force: none before the configuration installs any.
pub(super) fn installed() -> Arc<GuardSections> {
    Arc::clone(&INSTALLED.read().unwrap_or_else(PoisonError::into_inner))
}

/// Makes `sections` the ones in force, for the guards made from now on (running ones are retuned by the
/// caller).
pub(super) fn install(sections: GuardSections) {
    *INSTALLED.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(sections);
}
