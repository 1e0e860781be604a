//! Exemplars: for each bucket of a site's duration histogram, the latest call that fell in it inside a
//! sampled trace, with that trace's id, so that a latency spike on a dashboard leads to a trace.
//!
//! The calls keep them as they finish (see the guards' exemplar store); this module reads them, per site
//! or per series of `hardened_call_duration_seconds`, for `/metrics` and other exporters.

pub use crate::guards::exemplars::{Exemplar, SampledSpan, Source, clear, enabled, exemplars, set_enabled, set_source};

/// The exemplars of every series of `hardened_call_duration_seconds` that has kept one, by its `function`,
/// `module` and `kind` labels, bucket by bucket as [`exemplars`] gives them (of the sites behind one series,
/// the latest of each bucket): what an exporter other than `/metrics` sends.
#[must_use]
pub fn by_series() -> std::collections::BTreeMap<(&'static str, &'static str, &'static str), Vec<Option<Exemplar>>> {
    super::calls::duration_exemplars()
}
