//! Reading a section's keys: the values each key takes, from the file or the environment, and what
//! every section of the configuration provides to be read, checked and rendered. Guard kinds implement
//! [`Keys`] for their settings in their own folders; the configuration reads them all the same way.

pub mod value;

use std::sync::OnceLock;

use hardened_schema::Kind;

pub use self::value::{Problem, Raw};

/// The keys of a section: what the readers, the environment and the renderer need to read and write one
/// section's values.
pub trait Keys: Default + Clone {
    /// The keys, in the order they are documented and rendered.
    fn keys() -> &'static [&'static str];

    /// Reads `key` (one of [`Keys::keys`]) from `raw`.
    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem>;

    /// A rule between keys that the section breaks, blamed on one of the keys `written` says the last
    /// source wrote.
    fn check(&self, _written: &dyn Fn(&str) -> bool) -> Option<(&'static str, Problem)> {
        None
    }

    /// The keys that are set, with their values in TOML.
    fn entries(&self) -> Vec<(&'static str, toml::Value)>;
}

pub fn int(value: impl Into<i64>) -> toml::Value {
    toml::Value::Integer(value.into())
}

pub fn push<T>(
    entries: &mut Vec<(&'static str, toml::Value)>,
    key: &'static str,
    value: Option<T>,
    to: impl Fn(T) -> toml::Value,
) {
    if let Some(value) = value {
        entries.push((key, to(value)));
    }
}

/// The keys of `kind` that the configuration accepts, in the schema's order: made once per kind.
pub fn config_keys(kind: &'static Kind, keys: &'static OnceLock<Vec<&'static str>>) -> &'static [&'static str] {
    keys.get_or_init(|| kind.keys.iter().filter(|spec| spec.accepted.in_config()).map(|spec| spec.name).collect())
}

/// A key the configuration does not accept, which the readers never pass: they check against
/// [`Keys::keys`] first.
pub fn not_a_config_key(kind: &Kind, key: &str) -> ! {
    unreachable!("`{key}` is not a configuration key of {}", kind.name)
}
