//! Exemplars: for each bucket of a site's duration histogram, a recent call that fell in it inside a
//! sampled trace (the latest, but that a bucket keeps an exemplar at least [`MIN_EXEMPLAR_AGE`]), with
//! that trace's id, so that a latency spike on a dashboard leads to a trace.
//!
//! The calls keep them as they finish (see the guards' exemplar store); this module reads them, per site
//! or per series of `hardened_call_duration_seconds`, for `/metrics` and other exporters.

pub use crate::guards::exemplars::{
    Exemplar, MIN_EXEMPLAR_AGE, SampledSpan, Source, clear, enabled, exemplars, note_sampled, set_enabled, set_source,
};

use prometheus::proto::LabelPair;

/// The exemplars of series of `hardened_call_duration_seconds`, by their `function`, `module` and `kind`
/// labels, bucket by bucket as [`exemplars`] gives them.
pub type BySeries = std::collections::BTreeMap<(&'static str, &'static str, &'static str), Vec<Option<Exemplar>>>;

/// The exemplars of every series of `hardened_call_duration_seconds` that has kept one (of the sites
/// behind one series, the latest of each bucket): what `/metrics` and the OTLP export send.
#[must_use]
pub fn by_series() -> BySeries {
    super::calls::duration_exemplars()
}

/// The exemplars, in `series`, of the duration series whose labels are `labels`, if it has any.
#[must_use]
pub fn of_series<'a>(labels: &[LabelPair], series: &'a BySeries) -> Option<&'a [Option<Exemplar>]> {
    let value = |name: &str| labels.iter().find(|pair| pair.name() == name).map(LabelPair::value);
    let wanted = (value("function")?, value("module")?, value("kind")?);
    // Few series have exemplars, and an export is not a call's path: a walk over them is enough.
    series
        .iter()
        .find(|((function, module, kind), _)| (*function, *module, *kind) == wanted)
        .map(|(_, kept)| kept.as_slice())
}
