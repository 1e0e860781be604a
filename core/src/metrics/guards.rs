//! Metrics of the guards, read from the guards themselves at scrape time: each kind reports its own
//! families ([`GuardKind::report`]), and the timeouts of call sites are read from their cells.

use std::collections::HashMap;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::guards::shards;
use crate::guards::site::sites;
use crate::guards::{self, guard_kinds};
use crate::kind::{Family, GuardKind, REJECTIONS, Report};

macro_rules! kinds {
    ($($field:ident: $guard:ty, $settings:ty, $on_site:ident, $one:ident, $all:ident;)*) => {
        /// Every family the guards report, kind by kind, then the rejections they share.
        fn families() -> Vec<&'static Family> {
            let mut families = Vec::new();
            $( families.extend_from_slice(<$guard as GuardKind>::FAMILIES); )*
            families.push(&REJECTIONS);
            families
        }

        /// What every guard of every kind reports now.
        fn report_all(report: &mut Report) {
            $(
                for guard in guards::$all() {
                    guard.report(report);
                }
            )*
        }
    };
}

guard_kinds!(kinds);

/// Collects guard metrics at scrape time.
#[derive(Debug)]
pub(crate) struct GuardMetrics {
    families: Vec<&'static Family>,
    descs: Vec<Desc>,
}

impl GuardMetrics {
    pub(crate) fn new() -> prometheus::Result<GuardMetrics> {
        let families = families();
        let descs = families
            .iter()
            .map(|family| {
                let labels = family.labels.iter().map(ToString::to_string).collect();
                Desc::new(family.name.to_owned(), family.help.to_owned(), labels, HashMap::new())
            })
            .collect::<prometheus::Result<_>>()?;
        Ok(GuardMetrics { families, descs })
    }
}

fn metric(family: &Family, values: &[String], value: f64) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(
        family
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name((*name).to_owned());
                pair.set_value(value.clone());
                pair
            })
            .collect(),
    );
    if family.counter {
        let mut counter = Counter::default();
        counter.set_value(value);
        metric.set_counter(counter);
    } else {
        let mut gauge = Gauge::default();
        gauge.set_value(value);
        metric.set_gauge(gauge);
    }
    metric
}

impl Collector for GuardMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // Every guard a site names exists from the first scrape on, so its series start at zero.
        guards::resolve_declared();
        let mut report = Report::default();
        report_all(&mut report);
        for site in sites().iter().filter(|site| site.has_timeout()) {
            let name = format!("{}::{}", site.module(), site.name());
            report.push(&REJECTIONS, ["timeout", &name], shards::totals(site).timeouts as f64);
        }
        self.families
            .iter()
            .map(|family| {
                let metrics = report
                    .series
                    .iter()
                    .filter(|(of, _, _)| std::ptr::eq(*of, *family))
                    .map(|(_, labels, value)| metric(family, labels, *value))
                    .collect();
                let mut proto = MetricFamily::default();
                proto.set_name(family.name.to_owned());
                proto.set_help(family.help.to_owned());
                proto.set_field_type(if family.counter { MetricType::COUNTER } else { MetricType::GAUGE });
                proto.set_metric(metrics);
                proto
            })
            .collect()
    }
}
