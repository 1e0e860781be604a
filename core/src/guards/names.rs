//! The names of the guards that functions declare.

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
        }

        impl DeclaredNames {
            /// Every kind's names, sorted and without repeats.
            pub(super) fn sort(&mut self) {
                $(
                    self.$field.sort();
                    self.$field.dedup();
                )*
            }
        }
    };
}

guard_kinds!(declared_names);
