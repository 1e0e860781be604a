//! The log filter and the trace filter: one decides the lines written, the other the spans traced, so
//! that quieting the log does not stop traces; [`init`](super::init) installs both, and either can be
//! replaced while the process runs.
//!
//! Each is a per-layer filter in a [`reload`] wrapper. A span or event that both filters turn away is
//! turned away at its call site once, as under one global filter: it costs nothing on later calls.
//!
//! An `EnvFilter` follows every span's life (created, entered, exited, closed) for its directives that
//! name spans or fields (`target[span{field=value}]=level`): each time a lock and a hash lookup, behind
//! the reload wrapper's own lock. [`SpanFilter`] tells it of those only while its directives have such a
//! one; the filters a service runs with (`info,hyper=warn`) decide by call site alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::Serialize;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::{Context, Filter};
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

/// Puts a new filter (its text, parsed) in place of one.
type Replace = dyn Fn(&str, EnvFilter) -> Result<(), reload::Error> + Send + Sync;

/// One filter that can be replaced: the text in force and how to put a new one in.
struct Reloadable {
    text: String,
    replace: Box<Replace>,
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

/// Whether a filter has a directive that names a span or a field, which only a span's life can decide:
/// in `EnvFilter`'s syntax, those are the directives with `[`.
fn follows_spans(text: &str) -> bool {
    text.contains('[')
}

/// A per-layer filter for a subscriber `S`, and what [`install`] keeps to replace it.
pub(super) fn reloadable<S>(which: Which, text: &str) -> Result<(SpanFilter<S>, ReloadableFilter), TelemetryError>
where
    S: Subscriber + 'static,
{
    let (inner, handle) = reload::Layer::new(parse(which, text)?);
    let follows = Arc::new(AtomicBool::new(follows_spans(text)));
    let filter = SpanFilter { inner, follows_spans: Arc::clone(&follows) };
    let replace = Box::new(move |text: &str, filter| {
        // Told of spans from before the new filter is in, so that it sees every span created under it.
        let follows_new = follows_spans(text);
        if follows_new {
            follows.store(true, Ordering::Release);
        }
        handle.reload(filter)?;
        if !follows_new {
            follows.store(false, Ordering::Release);
        }
        Ok(())
    });
    Ok((filter, ReloadableFilter(Reloadable { text: text.to_owned(), replace })))
}

/// A reloadable `EnvFilter` that is told of spans' lives only while its directives need them (see the
/// module's documentation). A span created before a filter naming spans was put in is not among the
/// spans that filter matches, as with `EnvFilter` alone for a span created before its directive.
pub(super) struct SpanFilter<S> {
    inner: reload::Layer<EnvFilter, S>,
    follows_spans: Arc<AtomicBool>,
}

impl<S> SpanFilter<S> {
    fn follows_spans(&self) -> bool {
        self.follows_spans.load(Ordering::Acquire)
    }

    /// Set while the filter's directives name spans, when it needs to be told of every step of their
    /// lives (see [`SpanLife`](super::span_life::SpanLife)).
    pub(super) fn follows_spans_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.follows_spans)
    }
}

impl<S: Subscriber> Filter<S> for SpanFilter<S> {
    fn enabled(&self, metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        Filter::enabled(&self.inner, metadata, cx)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        Filter::callsite_enabled(&self.inner, metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Filter::max_level_hint(&self.inner)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        if self.follows_spans() {
            Filter::on_new_span(&self.inner, attrs, id, cx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: Context<'_, S>) {
        if self.follows_spans() {
            Filter::on_record(&self.inner, id, values, cx);
        }
    }

    fn on_enter(&self, id: &Id, cx: Context<'_, S>) {
        if self.follows_spans() {
            Filter::on_enter(&self.inner, id, cx);
        }
    }

    fn on_exit(&self, id: &Id, cx: Context<'_, S>) {
        if self.follows_spans() {
            Filter::on_exit(&self.inner, id, cx);
        }
    }

    fn on_close(&self, id: Id, cx: Context<'_, S>) {
        if self.follows_spans() {
            Filter::on_close(&self.inner, id, cx);
        }
    }
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
            (reloadable.replace)(text, filter).map_err(|error| TelemetryError::Reload(error.to_string()))?;
            text.clone_into(&mut reloadable.text);
        }
    }
    Ok(Filters { log: installed.log.text.clone(), trace: installed.trace.text.clone() })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::{Layer, Registry};

    use super::*;

    /// Counts the events its filter lets through.
    struct Counted(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Counted {
        fn on_event(&self, _event: &tracing::Event<'_>, _cx: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A subscriber counting the events `text` lets through, and what replaces the filter.
    fn counting(text: &str) -> (impl Subscriber + Send + Sync, Arc<AtomicUsize>, Arc<AtomicBool>, ReloadableFilter) {
        let (filter, reloadable) = reloadable(Which::Log, text).expect("the filter parses");
        let follows = Arc::clone(&filter.follows_spans);
        let count = Arc::new(AtomicUsize::new(0));
        let subscriber = Registry::default().with(Counted(Arc::clone(&count)).with_filter(filter));
        (subscriber, count, follows, reloadable)
    }

    fn replace(reloadable: &ReloadableFilter, text: &str) {
        (reloadable.0.replace)(text, parse(Which::Log, text).expect("the filter parses")).expect("reloaded");
    }

    #[test]
    fn a_filter_naming_a_span_lets_through_what_is_inside_that_span_only() {
        let (subscriber, count, follows, _) = counting("warn,[wanted]=debug");
        assert!(follows.load(Ordering::Relaxed));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("wanted").in_scope(|| tracing::debug!("inside"));
            tracing::info_span!("other").in_scope(|| tracing::debug!("elsewhere"));
            tracing::debug!("outside");
        });
        assert_eq!(count.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_filter_by_call_site_alone_is_not_told_of_spans_and_decides_the_same() {
        let (subscriber, count, follows, _) = counting("warn,hardened=debug");
        assert!(!follows.load(Ordering::Relaxed));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("any").in_scope(|| {
                tracing::debug!(target: "hardened::x", "let through");
                tracing::debug!(target: "other", "turned away");
                tracing::warn!(target: "other", "let through");
            });
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_reloaded_filter_follows_spans_while_it_names_one() {
        let (subscriber, count, follows, reloadable) = counting("warn");
        tracing::subscriber::with_default(subscriber, || {
            replace(&reloadable, "warn,[wanted]=debug");
            assert!(follows.load(Ordering::Relaxed));
            tracing::info_span!("wanted").in_scope(|| tracing::debug!("inside"));
            assert_eq!(count.load(Ordering::Relaxed), 1);

            replace(&reloadable, "warn");
            assert!(!follows.load(Ordering::Relaxed));
            tracing::info_span!("wanted").in_scope(|| tracing::debug!("inside, no longer wanted"));
            assert_eq!(count.load(Ordering::Relaxed), 1);
        });
    }
}
