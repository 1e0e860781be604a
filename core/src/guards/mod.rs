//! Named guards, shared process-wide: every function that says `breaker = "llm"` uses one breaker.
//!
//! A call site resolves its guards once, on its first call, into the static the macro generated; after
//! that no call looks anything up. Guards without a name belong to their function and are registered under
//! `module::function`. Configuration layers over the settings a function wrote, and retunes running
//! guards when it is reloaded.

pub mod call;
pub mod chain;
pub(crate) mod exemplars;
pub mod guarded;
pub mod hedging;
pub(crate) mod held;
pub mod histograms;
pub mod instrument;
pub mod keyed_held;
pub mod kinds;
pub mod names;
pub mod registry;
pub mod retrying;
pub mod sections;
pub(crate) mod shards;
pub mod site;
pub mod span_site;
pub mod tokens;

pub use self::chain::{GuardChain, GuardNames};
pub use self::kinds::guard_kinds;
pub use self::names::DeclaredNames;
// Every kind's lookups by name (`breaker`, `breakers`, ...), made from the list of kinds.
pub use self::registry::*;
pub use self::sections::GuardSections;
pub use self::site::{Declared, SiteGuards};
