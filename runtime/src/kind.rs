//! What every kind of named guard provides: how it is made and retuned from its settings, and which
//! configuration section describes it. Each kind implements [`GuardKind`] in its own folder; the registry
//! of named guards, the call sites and the configuration use them through it.

use std::fmt::Debug;

use hardened_schema::Kind;

use crate::keys::Keys;

/// One kind of named guard. Configuration layers over it: the built-in default ([`GuardKind::Config`]'s
/// `Default`), then the file's `[kind.default]`, then the literal of the function that made it, then the
/// file's `[kind.<name>]` (with the environment already merged into the file's sections).
pub(crate) trait GuardKind: Sized + Send + Sync + 'static {
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
}
