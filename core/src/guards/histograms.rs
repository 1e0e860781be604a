//! The duration histogram of each call site: whether it has one, and its bounds.
//!
//! Both are layered, from weakest: the built-in bounds, `[metrics.default]`, the attribute
//! (`buckets = [..]`, `histogram = false`), `[metrics.<kind>]`, then `[metrics."<module>::<function>"]`
//! (the site's `module` and `function` labels). The configuration installs its sections here
//! ([`configure`]); the metric layout reads them once, at the first call or scrape, and fixes every
//! site's histogram cells for the life of the process: the cells of every thread's shard are laid out
//! by them. A configuration installed later that changes a histogram takes effect at the next start;
//! [`pending`] lists the sites it would change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use hardened_schema as schema;

use super::site::{Bounds, Site, sites};
use crate::keys::value::{Problem, Raw};
use crate::keys::{Keys, config_keys, push};

/// The section that applies to every function, under the attribute.
const DEFAULT_SECTION: &str = "default";

/// The histogram settings of one `[metrics.<name>]` section; each optional, only those written change
/// anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `buckets`: the bounds of `hardened_call_duration_seconds`, increasing.
    pub buckets: Option<Vec<Duration>>,
    /// `histogram`: whether calls are timed into `hardened_call_duration_seconds`; `false` keeps their
    /// counters only (and wins over `buckets`).
    pub histogram: Option<bool>,
}

impl MetricsSettings {
    /// Settings that set nothing.
    pub const UNSET: MetricsSettings = MetricsSettings { buckets: None, histogram: None };

    /// What holds when nothing sets a key: a histogram, with the built-in bounds (`buckets` unset).
    #[must_use]
    pub fn built_in() -> MetricsSettings {
        MetricsSettings { buckets: None, histogram: Some(true) }
    }

    /// These settings with what `over` sets in place of theirs.
    #[must_use]
    pub fn layered(self, over: &MetricsSettings) -> MetricsSettings {
        MetricsSettings { buckets: over.buckets.clone().or(self.buckets), histogram: over.histogram.or(self.histogram) }
    }
}

/// `[metrics.<name>]` sections by name: `default`, a kind, or a function as `module::function`.
pub type MetricsSections = BTreeMap<String, MetricsSettings>;

impl Keys for MetricsSettings {
    fn keys() -> &'static [&'static str] {
        static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
        config_keys(&schema::metrics::KIND, &KEYS)
    }

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), Problem> {
        use schema::metrics::Key;
        match Key::from_name(key) {
            Some(Key::Buckets) => self.buckets = Some(buckets(raw)?),
            Some(Key::Histogram) => self.histogram = Some(crate::keys::value::boolean(raw)?),
            None => crate::keys::not_a_config_key(&schema::metrics::KIND, key),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<(&'static str, toml::Value)> {
        use schema::metrics::Key;
        let mut entries = Vec::new();
        push(&mut entries, Key::Buckets.name(), self.buckets.as_deref(), |bounds| {
            toml::Value::Array(bounds.iter().map(|bound| toml::Value::Float(bound.as_secs_f64())).collect())
        });
        push(&mut entries, Key::Histogram.name(), self.histogram, toml::Value::Boolean);
        entries
    }
}

/// Bucket bounds: a TOML array of numbers of seconds, or a variable's comma-separated numbers
/// (`0.5,1,2,5`); from 1 to [`schema::MAX_BUCKETS`] of them, each at least a nanosecond and larger than
/// the one before (compared in whole nanoseconds, so two that round to one are refused).
fn buckets(raw: Raw<'_>) -> Result<Vec<Duration>, Problem> {
    let allowed = || schema::Value::Buckets.to_string();
    let written: Vec<Result<f64, String>> = match raw {
        Raw::Toml(toml::Value::Array(values)) => values
            .iter()
            .map(|value| match value {
                toml::Value::Float(seconds) => Ok(*seconds),
                #[allow(clippy::cast_precision_loss, reason = "a bound that large is refused anyway")]
                toml::Value::Integer(seconds) => Ok(*seconds as f64),
                other => Err(other.to_string()),
            })
            .collect(),
        Raw::Toml(_) => return Err(Problem::new("is not a list of numbers of seconds", allowed())),
        Raw::Env(text) if text.trim().is_empty() => Vec::new(),
        Raw::Env(text) => {
            text.split(',').map(|part| part.trim().parse::<f64>().map_err(|_| format!("\"{}\"", part.trim()))).collect()
        }
    };
    if written.is_empty() {
        return Err(Problem::new("has no bound", allowed()));
    }
    if written.len() > schema::MAX_BUCKETS {
        return Err(Problem::new(
            format!("has {} bounds, more than {}", written.len(), schema::MAX_BUCKETS),
            allowed(),
        ));
    }
    let mut bounds: Vec<u64> = Vec::with_capacity(written.len());
    for bound in written {
        let seconds = bound.map_err(|text| Problem::new(format!("holds {text}, which is not a number"), allowed()))?;
        let Some(nanos) = schema::bucket_nanos(seconds) else {
            return Err(Problem::new(format!("holds {seconds}, which is not a bound"), allowed()));
        };
        if let Some(last) = bounds.last().filter(|last| nanos <= **last) {
            let last = Duration::from_nanos(*last).as_secs_f64();
            return Err(Problem::new(format!("holds {seconds} after {last}; bounds must increase"), allowed()));
        }
        bounds.push(nanos);
    }
    Ok(bounds.into_iter().map(Duration::from_nanos).collect())
}

static INSTALLED: LazyLock<RwLock<Arc<MetricsSections>>> = LazyLock::new(RwLock::default);

/// Whether the metric layout has fixed every site's histogram.
static FIXED: AtomicBool = AtomicBool::new(false);

/// The sections in force: none before the configuration installs any.
fn installed() -> Arc<MetricsSections> {
    Arc::clone(&INSTALLED.read().unwrap_or_else(PoisonError::into_inner))
}

/// Makes `sections` the `[metrics.<name>]` sections in force. Before the first call or scrape they decide
/// every site's histogram; after it, the histograms stay as they are until the next start, and the sites
/// whose histogram `sections` would change are logged and returned (as [`pending`] returns them).
pub fn configure(sections: MetricsSections) -> Vec<&'static Site> {
    let fixed = {
        // Under the lock the layout holds while it fixes the histograms: either it reads these sections,
        // or it has fixed every histogram before they are in force.
        let mut installed = INSTALLED.write().unwrap_or_else(PoisonError::into_inner);
        *installed = Arc::new(sections);
        FIXED.load(Ordering::Acquire)
    };
    if !fixed {
        return Vec::new();
    }
    let waiting = pending();
    if !waiting.is_empty() {
        let functions: Vec<String> = waiting.iter().map(|site| function_path(site)).collect();
        tracing::warn!(
            target: "hardened::config",
            functions = ?functions,
            "new duration histogram settings ([metrics.<name>]) take effect at the next start: the metric layout \
             is fixed once calls start; these functions keep their histograms until then"
        );
    }
    waiting
}

/// The sites whose histogram in force differs from the one the sections in force give them, because the
/// sections changed after the metric layout was fixed: they take the new one at the next start. Empty
/// before the first call or scrape.
#[must_use]
pub fn pending() -> Vec<&'static Site> {
    if !FIXED.load(Ordering::Acquire) {
        return Vec::new();
    }
    let sections = installed();
    sites()
        .iter()
        .filter(|site| site.metrics_enabled())
        .filter(|site| cells(planned(site, &sections).as_deref()) != site.histogram_cells())
        .collect()
}

/// `module::function`: how a `[metrics.<name>]` section names one function, by its series' labels.
#[must_use]
pub fn function_path(site: &Site) -> String {
    format!("{}::{}", site.module(), site.name())
}

/// The settings of `site` under `sections`, layered from the built-in default to its function's section.
fn layered(site: &Site, sections: &MetricsSections) -> MetricsSettings {
    let written = MetricsSettings {
        buckets: site.written_buckets().map(|bounds| bounds.iter().copied().map(Duration::from_nanos).collect()),
        histogram: site.written_histogram(),
    };
    let mut settings = MetricsSettings::built_in();
    if let Some(default) = sections.get(DEFAULT_SECTION) {
        settings = settings.layered(default);
    }
    settings = settings.layered(&written);
    for name in [site.kind().to_owned(), function_path(site)] {
        if let Some(section) = sections.get(&name) {
            settings = settings.layered(section);
        }
    }
    settings
}

/// The histogram `site` has under `sections`: its bounds in nanoseconds, or `None` without one.
#[must_use]
pub fn planned(site: &Site, sections: &MetricsSections) -> Option<Vec<u64>> {
    let settings = layered(site, sections);
    if settings.histogram == Some(false) {
        return None;
    }
    Some(match settings.buckets {
        Some(bounds) => bounds.iter().map(|bound| u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX)).collect(),
        None => schema::DEFAULT_BUCKETS_NANOS.to_vec(),
    })
}

/// The cells of a histogram with `bounds`: each bound, then `u64::MAX` for `+Inf`; none without one.
fn cells(bounds: Option<&[u64]>) -> Vec<u64> {
    bounds.map(|bounds| bounds.iter().copied().chain([u64::MAX]).collect()).unwrap_or_default()
}

/// Fixes every site's histogram cells under the sections in force; the metric layout calls it once,
/// before it lays the cells out. Sites with one layout share one copy of its bounds.
pub(crate) fn fix_all() {
    // Held until every histogram is fixed: see `configure`.
    let sections = INSTALLED.read().unwrap_or_else(PoisonError::into_inner);
    let mut layouts: Vec<&'static Bounds> = Vec::new();
    for site in sites().iter().filter(|site| site.metrics_enabled()) {
        let Some(bounds) = planned(site, &sections) else { continue };
        let mut wanted: Bounds = [u64::MAX; schema::MAX_BUCKETS + 1];
        // Both the attribute and the configuration keep to the maximum; the `+Inf` bound stays either way.
        for (kept, bound) in wanted.iter_mut().zip(bounds.iter().take(schema::MAX_BUCKETS)) {
            *kept = *bound;
        }
        if let Some(layout) = layouts.iter().find(|layout| ***layout == wanted) {
            site.fix_histogram(layout);
        } else {
            let layout: &'static Bounds = Box::leak(Box::new(wanted));
            layouts.push(layout);
            site.fix_histogram(layout);
        }
    }
    FIXED.store(true, Ordering::Release);
}

impl Site {
    /// Whether calls of this site are timed into `hardened_call_duration_seconds`: as the metric layout
    /// fixed it at the first call or scrape, or, before that, as the configuration in force would. Never
    /// with `metrics = false`.
    #[must_use]
    pub fn has_histogram(&self) -> bool {
        self.buckets_in_force().is_some()
    }

    /// Upper bounds of the duration histogram's buckets (none without a histogram): as the metric layout
    /// fixed them at the first call or scrape, or, before that, as the configuration in force would.
    pub fn buckets(&self) -> impl ExactSizeIterator<Item = Duration> + use<> {
        self.buckets_in_force().unwrap_or_default().into_iter().map(Duration::from_nanos)
    }

    /// The bounds of the histogram in force, in nanoseconds, or `None` without one.
    fn buckets_in_force(&self) -> Option<Vec<u64>> {
        if !self.metrics_enabled() {
            None
        } else if FIXED.load(Ordering::Acquire) {
            (!self.histogram_cells().is_empty()).then(|| self.bucket_nanos().to_vec())
        } else {
            planned(self, &installed())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: Raw<'_>) -> Result<Vec<f64>, Problem> {
        buckets(raw).map(|bounds| bounds.iter().map(Duration::as_secs_f64).collect())
    }

    #[test]
    fn bounds_are_read_from_a_toml_array_or_a_comma_separated_variable() {
        let array: toml::Value = toml::Value::Array(vec![toml::Value::Float(0.5), toml::Value::Integer(2)]);
        assert_eq!(read(Raw::Toml(&array)), Ok(vec![0.5, 2.0]));
        assert_eq!(read(Raw::Env(" 0.005, 0.05 ,1")), Ok(vec![0.005, 0.05, 1.0]));
    }

    #[test]
    fn bounds_that_are_not_a_growing_list_of_positive_seconds_are_refused_with_what_is_allowed() {
        let cases: [(&str, &str); 6] = [
            ("", "has no bound"),
            ("1, x", "holds \"x\", which is not a number"),
            ("0, 1", "holds 0, which is not a bound"),
            ("1, -2", "holds -2, which is not a bound"),
            ("1, 0.5", "holds 0.5 after 1; bounds must increase"),
            ("1, 1", "holds 1 after 1; bounds must increase"),
        ];
        for (written, problem) in cases {
            let refused = read(Raw::Env(written)).expect_err(written);
            assert_eq!(refused.problem, problem, "{written}");
            assert_eq!(refused.allowed, schema::Value::Buckets.to_string());
        }
        let many = (1..=65).map(|bound| bound.to_string()).collect::<Vec<_>>().join(",");
        assert_eq!(read(Raw::Env(&many)).expect_err("too many").problem, "has 65 bounds, more than 64");
        let string = toml::Value::String("0.5, 1".to_owned());
        assert_eq!(read(Raw::Toml(&string)).expect_err("a string").problem, "is not a list of numbers of seconds");
        let nan = toml::Value::Array(vec![toml::Value::Float(f64::NAN)]);
        assert_eq!(read(Raw::Toml(&nan)).expect_err("not a number").problem, "holds NaN, which is not a bound");
        let rounded = toml::Value::Array(vec![toml::Value::Float(1e-9), toml::Value::Float(1.2e-9)]);
        assert!(read(Raw::Toml(&rounded)).is_err(), "two bounds that round to one nanosecond");
    }

    #[test]
    fn a_later_source_replaces_only_what_it_sets() {
        let kind = MetricsSettings { buckets: Some(vec![Duration::from_secs(1)]), histogram: None };
        let function = MetricsSettings { histogram: Some(false), ..MetricsSettings::UNSET };
        let layered = MetricsSettings::built_in().layered(&kind).layered(&function);
        assert_eq!(layered, MetricsSettings { buckets: Some(vec![Duration::from_secs(1)]), histogram: Some(false) });
    }

    #[test]
    fn settings_render_as_the_configuration_writes_them() {
        let settings = MetricsSettings {
            buckets: Some(vec![Duration::from_millis(500), Duration::from_secs(2)]),
            histogram: None,
        };
        let rendered: Vec<String> =
            settings.entries().into_iter().map(|(key, value)| format!("{key} = {value}")).collect();
        assert_eq!(rendered, ["buckets = [0.5, 2.0]"]);
    }
}
