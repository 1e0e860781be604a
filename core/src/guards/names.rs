//! The names of the guards that functions declare, and those that guard chains without a call site (tower
//! layers) name at run time.

use std::sync::{Mutex, PoisonError};

use super::kinds::guard_kinds;

macro_rules! declared_names {
    ($($field:ident: $guard:ty, $settings:ty, $on_site:ident, $one:ident, $all:ident;)*) => {
        /// The guard names that functions declare, by kind: what configuration sections may name.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct DeclaredNames {
            $(
                #[doc = concat!("The names of `", stringify!($field), "` guards.")]
                pub $field: Vec<String>,
            )*
            /// The names of the service level objectives functions count towards (not a guard, but
            /// named and configured as one); filled by the configuration, which reads them apart.
            pub slo: Vec<String>,
            /// What `[metrics.<name>]` sections may name: the functions' kinds, and the functions as
            /// `module::function`; filled by the configuration, which reads them apart.
            pub metrics: Vec<String>,
        }

        impl DeclaredNames {
            /// Adds `other`'s names.
            pub(super) fn extend(&mut self, other: &DeclaredNames) {
                $( self.$field.extend(other.$field.iter().cloned()); )*
                self.slo.extend(other.slo.iter().cloned());
                self.metrics.extend(other.metrics.iter().cloned());
            }

            /// Every kind's names, sorted and without repeats.
            pub(super) fn sort(&mut self) {
                $(
                    self.$field.sort();
                    self.$field.dedup();
                )*
                self.slo.sort();
                self.slo.dedup();
                self.metrics.sort();
                self.metrics.dedup();
            }
        }
    };
}

guard_kinds!(declared_names);

/// The names guard chains without a call site go through, added as each chain is made.
static CHAIN_NAMES: Mutex<Option<DeclaredNames>> = Mutex::new(None);

/// Records the names a chain goes through, as `record` adds them.
pub(super) fn record_chain_names(record: impl FnOnce(&mut DeclaredNames)) {
    record(CHAIN_NAMES.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(DeclaredNames::default));
}

/// Adds the names guard chains go through to `declared`.
pub(super) fn add_chain_names(declared: &mut DeclaredNames) {
    if let Some(names) = CHAIN_NAMES.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        declared.extend(names);
    }
}
