//! The call-site registry: every `#[hardened]` function, known at link time.
//!
//! Each annotated function places one [`Site`] in a distributed slice, so the whole list exists before
//! `main` runs: metric series are present at zero before a function's first call, and configuration that
//! names a guard no function uses can be reported at startup.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::held::Held;
use super::kinds::guard_kinds;
use crate::outcome::Outcome;

/// `Site::slot` before the metric layout is computed.
pub(crate) const UNRESOLVED: u32 = u32::MAX;
/// `Site::slot` of a site whose metrics are turned off (`metrics = false`).
pub(crate) const DETACHED: u32 = u32::MAX - 1;

/// What the macro knows about a call site at compile time.
#[doc(hidden)]
#[derive(Debug)]
#[allow(clippy::struct_excessive_bools, reason = "written by the macro as literals, read as flags")]
pub struct SiteMeta {
    pub name: &'static str,
    pub function: &'static str,
    pub module: &'static str,
    pub kind: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub options: &'static str,
    pub metrics: bool,
    /// `buckets = [..]`, in nanoseconds.
    pub buckets: Option<&'static [u64]>,
    /// `histogram = ..`, when written.
    pub histogram: Option<bool>,
    /// Whether a guard can refuse the call (breaker, rate limiter or bulkhead).
    pub refusable: bool,
    /// Whether the call has a timeout.
    pub timeout: bool,
    /// Whether the call retries.
    pub retries: bool,
    /// The site's guards, when it has any.
    pub guards: Option<&'static crate::guards::site::SiteGuards>,
}

/// One `#[hardened]` function.
///
/// Sites are created by the macro as statics; list them with [`sites()`].
#[derive(Debug)]
pub struct Site {
    meta: SiteMeta,
    /// Offset of this site's cells in every thread's metric shard, assigned once for all sites.
    slot: AtomicU32,
    /// The duration histogram's bounds, fixed with the metric layout (see `histograms`); never set for a
    /// site without a histogram.
    histogram: OnceLock<&'static Bounds>,
}

/// A histogram's bounds as the metric layout keeps them: the bounds in nanoseconds, then `u64::MAX` to
/// the end, the first of which is the `+Inf` cell. Of a fixed size, so that finding a call's bucket
/// reads no length and tests no emptiness: the `+Inf` bound is always found.
pub(crate) type Bounds = [u64; hardened_schema::MAX_BUCKETS + 1];

impl Site {
    #[doc(hidden)]
    #[must_use]
    pub const fn __new(meta: SiteMeta) -> Site {
        let slot = if meta.metrics { UNRESOLVED } else { DETACHED };
        Site { meta, slot: AtomicU32::new(slot), histogram: OnceLock::new() }
    }

    /// The name used for the span and the `function` label (`name = ".."`, or the function's name).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.meta.name
    }

    /// The Rust name of the function.
    #[must_use]
    pub fn function(&self) -> &'static str {
        self.meta.function
    }

    /// The module path, the `module` label and the span's `code.namespace`.
    #[must_use]
    pub fn module(&self) -> &'static str {
        self.meta.module
    }

    /// The `kind` label (`"function"` unless set).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.meta.kind
    }

    /// The source file of the function.
    #[must_use]
    pub fn file(&self) -> &'static str {
        self.meta.file
    }

    /// The line of the function's name in [`Site::file`].
    #[must_use]
    pub fn line(&self) -> u32 {
        self.meta.line
    }

    /// The attribute's arguments as written, e.g. `kind = "tool", level = "debug"`.
    #[must_use]
    pub fn options(&self) -> &'static str {
        self.meta.options
    }

    /// Whether the site records metrics (`metrics = false` turns them off).
    #[must_use]
    pub fn metrics_enabled(&self) -> bool {
        self.meta.metrics
    }

    /// The outcomes this site can end with: `rejected` only with a refusing guard, `timeout` only with a
    /// timeout.
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome> + use<'_> {
        Outcome::ALL.into_iter().filter(|outcome| match outcome {
            Outcome::Rejected => self.meta.refusable,
            Outcome::Timeout => self.meta.timeout,
            _ => true,
        })
    }

    /// The guards the site declares, if any.
    #[must_use]
    pub fn guards(&self) -> Option<&'static crate::guards::site::SiteGuards> {
        self.meta.guards
    }

    /// Whether the call retries failed attempts.
    #[must_use]
    pub fn retries(&self) -> bool {
        self.meta.retries
    }

    /// Per-site timeouts, for `hardened_rejections_total{guard="timeout"}`.
    pub(crate) fn has_timeout(&self) -> bool {
        self.meta.timeout
    }

    /// The histogram bounds the attribute writes (`buckets = [..]`), in nanoseconds.
    pub(crate) fn written_buckets(&self) -> Option<&'static [u64]> {
        self.meta.buckets
    }

    /// `histogram = ..`, when the attribute writes it.
    pub(crate) fn written_histogram(&self) -> Option<bool> {
        self.meta.histogram
    }

    /// The histogram's bounds as the metric layout fixed them: `None` for a site without a histogram,
    /// and before the layout is fixed.
    #[inline]
    pub(crate) fn histogram_bounds(&self) -> Option<&'static Bounds> {
        self.histogram.get().copied()
    }

    /// The bounds of the histogram's cells, one per cell, `u64::MAX` (`+Inf`) last: empty for a site
    /// without a histogram, and before the layout is fixed.
    pub(crate) fn histogram_cells(&self) -> &'static [u64] {
        let Some(bounds) = self.histogram_bounds() else { return &[] };
        let cells = bounds.iter().position(|bound| *bound == u64::MAX).map_or(bounds.len(), |infinite| infinite + 1);
        &bounds[..cells]
    }

    /// Fixes the site's histogram (see [`Bounds`]), once.
    pub(crate) fn fix_histogram(&self, bounds: &'static Bounds) {
        let _ = self.histogram.set(bounds);
    }

    /// The finite bounds of the histogram in force, in nanoseconds: empty without one, and before the
    /// metric layout is fixed.
    pub(crate) fn bucket_nanos(&self) -> &'static [u64] {
        let cells = self.histogram_cells();
        &cells[..cells.len().saturating_sub(1)]
    }

    #[inline]
    pub(crate) fn slot(&self) -> u32 {
        self.slot.load(Ordering::Relaxed)
    }

    pub(crate) fn assign_slot(&self, slot: u32) {
        self.slot.store(slot, Ordering::Relaxed);
    }
}

/// Every `#[hardened]` function linked into this program, in no particular order.
#[must_use]
pub fn sites() -> &'static [Site] {
    &SITES
}

// `distributed_slice` places the sites in a linker section, which needs `unsafe` link attributes; the
// section holds only `Site` values, and linkme checks the element type of every entry at compile time.
#[allow(unsafe_code)]
mod section {
    use super::Site;

    /// The linker section every `#[hardened]` function adds its [`Site`] to.
    #[linkme::distributed_slice]
    pub static SITES: [Site];
}

#[doc(hidden)]
pub use section::SITES;

/// A guard as a function declares it: its name (none for the function's own) and its literal settings.
#[doc(hidden)]
#[derive(Debug)]
pub struct Declared<S> {
    pub name: Option<&'static str>,
    pub settings: S,
}

macro_rules! site_guards {
    ($($field:ident: $guard:ty, $settings:ty, $on_site:ident, $one:ident, $all:ident;)*) => {
        /// The guards of one call site, as written, and as resolved on the first call.
        #[doc(hidden)]
        #[derive(Debug)]
        pub struct SiteGuards {
            pub(super) site: &'static Site,
            pub(super) declared: Declarations,
            pub(super) timeout: Option<Duration>,
            pub(super) resolved: OnceLock<Resolved>,
            /// Whether calls take their rate limiter's tokens by key or cost, once per call, before the
            /// chain (which then runs without the rate limiter).
            pub(super) takes_tokens: bool,
            /// Whether calls take their bulkhead's permit by key, once per call, before the chain (which
            /// then runs without the bulkhead).
            pub(super) keyed_bulkhead: bool,
        }

        /// What a call site declares, by kind.
        #[derive(Debug)]
        pub(super) struct Declarations {
            $( pub(super) $field: Option<Declared<$settings>>, )*
        }

        /// The guards of a site, looked up once together: one check per call instead of one per guard.
        #[derive(Debug, Clone, Copy)]
        pub(crate) struct Resolved {
            $( pub(crate) $field: Option<&'static $guard>, )*
            /// The slots of the guards that hold a permit for the length of the call, in the order of
            /// the list of kinds, those the site has first.
            pub(crate) held: Held,
            /// The rate limiter of a site whose calls take tokens by key or cost, outside the chain.
            pub(crate) tokens: Option<&'static $crate::rate_limit::RateLimiter>,
            /// The slots of a guard whose permits a site's calls take by key, outside the chain.
            pub(crate) keyed: Option<&'static $crate::slots::Slots>,
        }

        impl SiteGuards {
            /// The guards of `site`: one declaration (or none) per kind, in the order of the list of kinds,
            /// then the timeout.
            #[must_use]
            #[allow(clippy::too_many_arguments, reason = "one per kind in the list of kinds, written by the macro")]
            pub const fn new(
                site: &'static Site,
                $( $field: Option<Declared<$settings>>, )*
                timeout: Option<Duration>,
            ) -> SiteGuards {
                SiteGuards {
                    site,
                    declared: Declarations { $( $field, )* },
                    timeout,
                    resolved: OnceLock::new(),
                    takes_tokens: false,
                    keyed_bulkhead: false,
                }
            }

            /// These guards, with calls that take their rate limiter's tokens by key or cost, once per
            /// call, before the rest of the chain (`rate(key = .., cost = .., settle = ..)`).
            #[must_use]
            pub const fn taking_tokens(mut self) -> SiteGuards {
                self.takes_tokens = true;
                self
            }

            /// These guards, with calls that take their bulkhead's permit by key, once per call, before
            /// the rest of the chain (`bulkhead(key = ..)`).
            #[must_use]
            pub const fn keyed_bulkhead(mut self) -> SiteGuards {
                self.keyed_bulkhead = true;
                self
            }
        }
    };
}

guard_kinds!(site_guards);

impl Resolved {
    /// These guards, with the rate limiter's tokens taken per call (by key or cost) when `tokens`, and the
    /// bulkhead's permits taken by key when `keyed_bulkhead`: both outside the chain, which then runs
    /// without them.
    pub(crate) fn per_key(mut self, tokens: bool, keyed_bulkhead: bool) -> Resolved {
        use crate::kind::GuardKind as _;
        if tokens {
            self.tokens = self.rate.take();
        }
        if keyed_bulkhead && let Some(slots) = self.bulkhead.take().and_then(|bulkhead| bulkhead.slots()) {
            self.held = super::held::without(self.held, slots);
            self.keyed = Some(slots);
        }
        self
    }
}

impl SiteGuards {
    /// The call site these guards belong to.
    #[must_use]
    pub fn site(&self) -> &'static Site {
        self.site
    }

    /// The site's timeout.
    #[inline]
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}
