//! Guard sections in the configuration: where each kind's `[kind.<name>]` sections live in [`Config`],
//! and the kind the schema describes.

use std::collections::BTreeMap;

use hardened_schema::Kind;

use super::operations::{HealthSettings, ServerSettings, ShutdownSettings, Single, TelemetrySettings};
use super::{Config, DeclaredNames, MetricsSettings, SloSettings};
use crate::guards::{GuardSections, guard_kinds};
use crate::keys::Keys;
use crate::kind::GuardKind;

/// A kind of guard section, one per name: `[breaker.<name>]` and the like.
pub(super) trait Section: Keys {
    /// The kind of guard, as the schema describes it.
    const SCHEMA: &'static Kind;
    /// The top-level table, a kind of guard: `breaker`, `rate`, ...
    const KIND: &'static str = Self::SCHEMA.name;
    /// What a section names, for messages: `breaker`, `rate limiter`, ...
    const NOUN: &'static str = Self::SCHEMA.noun;

    /// The names functions declare for guards of this kind.
    fn declared(names: &DeclaredNames) -> &[String];

    /// The sections of this kind in `config`.
    fn of(config: &Config) -> &BTreeMap<String, Self>;

    /// The sections of this kind in `config`, to change.
    fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self>;
}

/// Something done with the sections of every kind of guard, one kind at a time, in the order of the list
/// of kinds.
pub(super) trait EachKind {
    /// Does it with the sections of kind `S`.
    fn kind<S: Section>(&mut self);
}

macro_rules! sections {
    ($($field:ident: $guard:ty, $settings:ty, $on_site:ident, $one:ident, $all:ident;)*) => {
        $(
            impl Section for $settings {
                const SCHEMA: &'static Kind = <$guard as GuardKind>::SCHEMA;

                fn declared(names: &DeclaredNames) -> &[String] {
                    &names.$field
                }

                fn of(config: &Config) -> &BTreeMap<String, Self> {
                    &config.$field
                }

                fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
                    &mut config.$field
                }
            }
        )*

        /// Calls `visitor` with every kind of named section: the guards', the objectives', then the
        /// histograms'.
        pub(super) fn each_kind(visitor: &mut impl EachKind) {
            $( visitor.kind::<$settings>(); )*
            visitor.kind::<SloSettings>();
            visitor.kind::<MetricsSettings>();
        }

        /// Every top-level table: the guard kinds', the objectives', the histograms', then the service's
        /// own sections.
        pub(super) const SECTIONS: &[&str] = &[
            $( <$settings as Section>::KIND, )*
            <SloSettings as Section>::KIND,
            <MetricsSettings as Section>::KIND,
            TelemetrySettings::SECTION,
            HealthSettings::SECTION,
            ShutdownSettings::SECTION,
            ServerSettings::SECTION,
        ];

        impl Config {
            /// The guards' sections, as the guards take them.
            pub(super) fn guard_sections(&self) -> GuardSections {
                GuardSections { $( $field: self.$field.clone(), )* }
            }

            /// This configuration with the guards' sections replaced by `sections`.
            pub(super) fn with_guard_sections(self, sections: GuardSections) -> Config {
                Config { $( $field: sections.$field, )* ..self }
            }
        }
    };
}

guard_kinds!(sections);

/// `[slo.<name>]`: named and layered as a guard's section is, though an objective is not a guard.
impl Section for SloSettings {
    const SCHEMA: &'static Kind = &hardened_schema::slo::KIND;

    fn declared(names: &DeclaredNames) -> &[String] {
        &names.slo
    }

    fn of(config: &Config) -> &BTreeMap<String, Self> {
        &config.slo
    }

    fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.slo
    }
}

/// `[metrics.<name>]`: named and layered as a guard's section is, by a kind or a function instead of a
/// guard's name.
impl Section for MetricsSettings {
    const SCHEMA: &'static Kind = &hardened_schema::metrics::KIND;

    fn declared(names: &DeclaredNames) -> &[String] {
        &names.metrics
    }

    fn of(config: &Config) -> &BTreeMap<String, Self> {
        &config.metrics
    }

    fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.metrics
    }
}
