//! Guard sections in the configuration: where each kind's `[kind.<name>]` sections live in [`Config`],
//! and the kind the schema describes.

use std::collections::BTreeMap;

use hardened_schema::{self as schema, Kind};

use super::{Config, DeclaredNames};
use crate::breaker::BreakerSettings;
use crate::bulkhead::BulkheadSettings;
use crate::keys::Keys;
use crate::rate_limit::RateSettings;
use crate::retry::RetrySettings;

/// A kind of guard section, one per name: `[breaker.<name>]` and the like.
pub(super) trait Section: Keys {
    /// The kind of guard, as the schema describes it.
    const SCHEMA: &'static Kind;
    /// The top-level table: `breaker`, `rate`, `bulkhead` or `retry`.
    const KIND: &'static str = Self::SCHEMA.name;
    /// What a section names, for messages: `breaker`, `rate limiter`, `bulkhead`, `retry policy`.
    const NOUN: &'static str = Self::SCHEMA.noun;

    /// The names functions declare for guards of this kind.
    fn declared(names: &DeclaredNames) -> &[String];

    /// The sections of this kind in `config`.
    fn of(config: &Config) -> &BTreeMap<String, Self>;

    /// The sections of this kind in `config`, to change.
    fn of_mut(config: &mut Config) -> &mut BTreeMap<String, Self>;
}

/// Defines a guard section's place in [`Config`] and its schema.
macro_rules! section {
    ($settings:ty, $schema:path, $field:ident) => {
        impl Section for $settings {
            const SCHEMA: &'static Kind = &$schema;

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
    };
}

section!(BreakerSettings, schema::breaker::KIND, breaker);
section!(RateSettings, schema::rate::KIND, rate);
section!(BulkheadSettings, schema::bulkhead::KIND, bulkhead);
section!(RetrySettings, schema::retry::KIND, retry);
