//! The log filter and the trace filter: one decides the lines written, the other the spans traced, so
//! that quieting the log does not stop traces; [`init`](super::init) installs both, and either can be
//! replaced while the process runs.
//!
//! Each is a per-layer filter in a [`reload`] wrapper. A span or event that both filters turn away is
//! turned away at its call site once, as under one global filter: it costs nothing on later calls.

use std::sync::{Mutex, OnceLock, PoisonError};

use serde::Serialize;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::reload;

use super::TelemetryError;

/// The filters in force, in `EnvFilter` syntax, as `GET /loggers` answers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Filters {
    /// Which events and spans are written to the log.
    pub log: String,
    /// Which spans are traced: given ids, propagated to outbound calls and exported.
    pub trace: String,
}

/// Which of the two filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    Log,
    Trace,
}

/// One filter that can be replaced: the text in force and how to put a new one in.
struct Reloadable {
    text: String,
    replace: Box<dyn Fn(EnvFilter) -> Result<(), reload::Error> + Send + Sync>,
}

/// The filters [`init`](super::init) installed; `None` in the lock until it has.
struct Installed {
    log: Reloadable,
    trace: Reloadable,
}

static INSTALLED: OnceLock<Mutex<Installed>> = OnceLock::new();

/// `text` as a filter, or the error naming which filter and why it does not parse.
pub(super) fn parse(which: Which, text: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::try_new(text).map_err(|error| {
        let (filter, reason) = (text.to_owned(), error.to_string());
        match which {
            Which::Log => TelemetryError::LogFilter { filter, reason },
            Which::Trace => TelemetryError::TraceFilter { filter, reason },
        }
    })
}

/// A per-layer filter for a subscriber `S`, and what [`install`] keeps to replace it.
pub(super) fn reloadable<S>(
    which: Which,
    text: &str,
) -> Result<(reload::Layer<EnvFilter, S>, ReloadableFilter), TelemetryError>
where
    S: tracing::Subscriber + 'static,
{
    let (layer, handle) = reload::Layer::new(parse(which, text)?);
    let replace = Box::new(move |filter| handle.reload(filter));
    Ok((layer, ReloadableFilter(Reloadable { text: text.to_owned(), replace })))
}

/// A filter installed in the global subscriber, for [`install`].
pub(super) struct ReloadableFilter(Reloadable);

/// Keeps the log and trace filters of the global subscriber, for [`filters`] and [`set_filters`].
pub(super) fn install(log: ReloadableFilter, trace: ReloadableFilter) {
    let installed = Installed { log: log.0, trace: trace.0 };
    // `init` installs the global subscriber once, so this runs once; a second value is dropped.
    let _ = INSTALLED.set(Mutex::new(installed));
}

/// The filters in force, or `None` before [`init`](super::init) installed them.
#[must_use]
pub fn filters() -> Option<Filters> {
    let installed = INSTALLED.get()?.lock().unwrap_or_else(PoisonError::into_inner);
    Some(Filters { log: installed.log.text.clone(), trace: installed.trace.text.clone() })
}

/// Replaces the log filter, the trace filter or both (`None` keeps one as it is), and returns the
/// filters now in force. Both are parsed before either changes: a filter that does not parse changes
/// nothing.
///
/// # Errors
///
/// [`TelemetryError::LogFilter`] or [`TelemetryError::TraceFilter`] with the parse error, and
/// [`TelemetryError::NotInitialised`] before [`init`](super::init).
pub fn set_filters(log: Option<&str>, trace: Option<&str>) -> Result<Filters, TelemetryError> {
    let installed = INSTALLED.get().ok_or(TelemetryError::NotInitialised)?;
    let log = log.map(|text| parse(Which::Log, text).map(|filter| (text, filter))).transpose()?;
    let trace = trace.map(|text| parse(Which::Trace, text).map(|filter| (text, filter))).transpose()?;
    let mut installed = installed.lock().unwrap_or_else(PoisonError::into_inner);
    let Installed { log: log_in_force, trace: trace_in_force } = &mut *installed;
    for (reloadable, new) in [(log_in_force, log), (trace_in_force, trace)] {
        if let Some((text, filter)) = new {
            (reloadable.replace)(filter).map_err(|error| TelemetryError::Reload(error.to_string()))?;
            text.clone_into(&mut reloadable.text);
        }
    }
    Ok(Filters { log: installed.log.text.clone(), trace: installed.trace.text.clone() })
}
