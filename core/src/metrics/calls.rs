//! The call metrics of every site, exposed as prometheus families:
//! `hardened_calls_total`, `hardened_call_duration_seconds` and `hardened_in_flight`.

use std::collections::BTreeMap;
use std::collections::HashMap;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};

use crate::guards::exemplars::{self, Exemplar};
use crate::guards::shards::{self, SiteTotals};
use crate::guards::site::{Site, sites};
use crate::outcome::Outcome;

pub(crate) const CALLS_TOTAL: &str = "hardened_calls_total";
pub(crate) const CALL_DURATION: &str = "hardened_call_duration_seconds";
pub(crate) const IN_FLIGHT: &str = "hardened_in_flight";
pub(crate) const RETRIES: &str = "hardened_retries_total";

const CALLS_HELP: &str = "Calls of #[hardened] functions, by outcome.";
const DURATION_HELP: &str = "Duration of #[hardened] calls in seconds.";
const IN_FLIGHT_HELP: &str = "#[hardened] calls started and not yet finished.";
const RETRIES_HELP: &str = "Retries of #[hardened] calls.";

/// Collects the metrics of all sites from the per-thread shards at scrape time.
#[derive(Debug)]
pub(crate) struct CallMetrics {
    descs: Vec<Desc>,
}

impl CallMetrics {
    pub(crate) fn new() -> prometheus::Result<CallMetrics> {
        let labels = |extra: &[&str]| {
            ["function", "module", "kind"].iter().chain(extra).map(ToString::to_string).collect::<Vec<_>>()
        };
        Ok(CallMetrics {
            descs: vec![
                Desc::new(CALLS_TOTAL.into(), CALLS_HELP.into(), labels(&["outcome"]), HashMap::new())?,
                Desc::new(CALL_DURATION.into(), DURATION_HELP.into(), labels(&[]), HashMap::new())?,
                Desc::new(IN_FLIGHT.into(), IN_FLIGHT_HELP.into(), labels(&[]), HashMap::new())?,
                Desc::new(
                    RETRIES.into(),
                    RETRIES_HELP.into(),
                    vec!["function".to_owned(), "module".to_owned()],
                    HashMap::new(),
                )?,
            ],
        })
    }
}

/// Sites sharing one label set (two methods called `new` in one module) are reported as one series.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    function: &'static str,
    module: &'static str,
    kind: &'static str,
}

struct Series {
    /// The histogram's cells' bounds, `+Inf` last; empty when the series has no histogram.
    cells: &'static [u64],
    totals: SiteTotals,
    /// Which outcomes the sites behind this series can end with.
    outcomes: [bool; Outcome::COUNT],
    retries: bool,
}

fn possible_outcomes(site: &Site) -> [bool; Outcome::COUNT] {
    let mut possible = [false; Outcome::COUNT];
    for outcome in site.outcomes() {
        possible[outcome.index()] = true;
    }
    possible
}

fn series() -> BTreeMap<SeriesKey, Series> {
    let mut series: BTreeMap<SeriesKey, Series> = BTreeMap::new();
    let all = sites().iter().zip(shards::all_totals());
    for (site, totals) in all.filter(|(site, _)| site.metrics_enabled()) {
        let key = SeriesKey { function: site.name(), module: site.module(), kind: site.kind() };
        let outcomes = possible_outcomes(site);
        let retries = site.retries();
        match series.get_mut(&key) {
            Some(existing) => {
                for (mine, theirs) in existing.outcomes.iter_mut().zip(outcomes) {
                    *mine |= theirs;
                }
                existing.retries |= retries;
                if existing.cells == site.histogram_cells() {
                    existing.totals.merge(&totals);
                } else {
                    // Different bucket layouts cannot share a histogram: keep the counts, and say why
                    // the durations of this site are missing.
                    existing.totals.merge_counts(&totals);
                    warn_bucket_conflict(site);
                }
            }
            None => {
                series.insert(key, Series { cells: site.histogram_cells(), totals, outcomes, retries });
            }
        }
    }
    series
}

/// The labels of a duration series: `function`, `module` and `kind`.
pub(crate) type SeriesLabels = (&'static str, &'static str, &'static str);

/// The exemplars of every duration series that has one, per bucket (the last for `+Inf`): of the sites
/// behind one series, the latest exemplar of each bucket. A site without a histogram has none to show.
pub(crate) fn duration_exemplars() -> BTreeMap<SeriesLabels, Vec<Option<Exemplar>>> {
    let mut series: BTreeMap<SeriesLabels, (&'static [u64], Vec<Option<Exemplar>>)> = BTreeMap::new();
    for site in sites().iter().filter(|site| site.metrics_enabled()) {
        let kept = if site.histogram_cells().is_empty() { Vec::new() } else { exemplars::exemplars(site) };
        let key = (site.name(), site.module(), site.kind());
        match series.get_mut(&key) {
            // The histogram of a series whose sites disagree on buckets has the first site's (see `series`).
            Some((cells, existing)) if *cells == site.histogram_cells() => {
                existing.resize(cells.len(), None);
                for (mine, theirs) in existing.iter_mut().zip(kept) {
                    if theirs.is_some_and(|theirs| mine.is_none_or(|mine| theirs.unix_nanos > mine.unix_nanos)) {
                        *mine = theirs;
                    }
                }
            }
            Some(_) => {}
            None => {
                series.insert(key, (site.histogram_cells(), kept));
            }
        }
    }
    series
        .into_iter()
        .filter(|(_, (_, kept))| kept.iter().any(Option::is_some))
        .map(|(key, (_, kept))| (key, kept))
        .collect()
}

fn warn_bucket_conflict(site: &Site) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            function = site.name(),
            module = site.module(),
            "two #[hardened] functions share a name, module and kind but not their buckets; give one a distinct `name`"
        );
    });
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

fn labels(key: &SeriesKey) -> Vec<LabelPair> {
    vec![label("function", key.function), label("module", key.module), label("kind", key.kind)]
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// The duration histogram of the series `key`, with finite `bounds` (the `+Inf` bucket is its count).
fn duration(key: &SeriesKey, bounds: &[u64], totals: &SiteTotals) -> Metric {
    let mut histogram = Histogram::default();
    let mut cumulative = 0u64;
    let mut buckets = Vec::with_capacity(bounds.len());
    for (bound, count) in bounds.iter().zip(&totals.buckets) {
        cumulative = cumulative.wrapping_add(*count);
        let mut bucket = Bucket::default();
        bucket.set_upper_bound(seconds(*bound));
        bucket.set_cumulative_count(cumulative);
        buckets.push(bucket);
    }
    let count = totals.buckets.iter().fold(0u64, |sum, count| sum.wrapping_add(*count));
    histogram.set_bucket(buckets);
    histogram.set_sample_count(count);
    histogram.set_sample_sum(seconds(totals.sum_nanos));
    let mut metric = Metric::default();
    metric.set_label(labels(key));
    metric.set_histogram(histogram);
    metric
}

impl Collector for CallMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let series = series();
        let mut calls = Vec::with_capacity(series.len() * Outcome::COUNT);
        let mut durations = Vec::with_capacity(series.len());
        let mut in_flight = Vec::with_capacity(series.len());
        let mut retries = Vec::new();
        for (key, Series { cells, totals, outcomes, retries: retried }) in &series {
            if *retried {
                let mut counter = Counter::default();
                counter.set_value(totals.retries as f64);
                let mut metric = Metric::default();
                metric.set_label(vec![label("function", key.function), label("module", key.module)]);
                metric.set_counter(counter);
                retries.push(metric);
            }
            for outcome in Outcome::ALL.into_iter().filter(|outcome| outcomes[outcome.index()]) {
                let mut counter = Counter::default();
                counter.set_value(totals.outcomes[outcome.index()] as f64);
                let mut metric = Metric::default();
                let mut pairs = labels(key);
                pairs.push(label("outcome", outcome.as_str()));
                metric.set_label(pairs);
                metric.set_counter(counter);
                calls.push(metric);
            }

            // A series without a histogram (`histogram = false`) keeps its counters only.
            if let Some((_, bounds)) = cells.split_last() {
                durations.push(duration(key, bounds, totals));
            }

            let mut gauge = Gauge::default();
            // A scrape racing a call that starts on one thread and ends on another can see the end first.
            gauge.set_value(totals.in_flight().min(i64::MAX as u64) as f64);
            let mut metric = Metric::default();
            metric.set_label(labels(key));
            metric.set_gauge(gauge);
            in_flight.push(metric);
        }
        vec![
            family(CALLS_TOTAL, CALLS_HELP, MetricType::COUNTER, calls),
            family(CALL_DURATION, DURATION_HELP, MetricType::HISTOGRAM, durations),
            family(IN_FLIGHT, IN_FLIGHT_HELP, MetricType::GAUGE, in_flight),
            family(RETRIES, RETRIES_HELP, MetricType::COUNTER, retries),
        ]
    }
}
