//! `hardened_slo_info{slo,function,module,kind} 1`: which call series count towards which objective, so
//! that rules join objectives to series with `* on(job, instance, function, module, kind)
//! group_left(slo)` instead of listing every function in every rule.

use std::collections::BTreeSet;
use std::collections::HashMap;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::slo::members;

pub(crate) const SLO_INFO: &str = "hardened_slo_info";
const SLO_INFO_HELP: &str = "Always 1: the calls of this function count towards the objective `slo`.";

/// The members of every objective, read from the link-time list at scrape time.
#[derive(Debug)]
pub(crate) struct SloInfo {
    desc: Desc,
}

impl SloInfo {
    pub(crate) fn new() -> prometheus::Result<SloInfo> {
        let labels = ["slo", "function", "module", "kind"].map(ToOwned::to_owned).to_vec();
        Ok(SloInfo { desc: Desc::new(SLO_INFO.into(), SLO_INFO_HELP.into(), labels, HashMap::new())? })
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

impl Collector for SloInfo {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // Sites sharing one label set are one call series, so they are one member too; a site without
        // metrics has no series to join.
        let joined: BTreeSet<(&str, &str, &str, &str)> = members()
            .iter()
            .filter(|member| member.site.metrics_enabled())
            .map(|member| (member.name, member.site.name(), member.site.module(), member.site.kind()))
            .collect();
        let metrics = joined
            .into_iter()
            .map(|(slo, function, module, kind)| {
                let mut gauge = Gauge::default();
                gauge.set_value(1.0);
                let mut metric = Metric::default();
                metric.set_label(vec![
                    label("slo", slo),
                    label("function", function),
                    label("module", module),
                    label("kind", kind),
                ]);
                metric.set_gauge(gauge);
                metric
            })
            .collect();
        let mut family = MetricFamily::default();
        family.set_name(SLO_INFO.to_owned());
        family.set_help(SLO_INFO_HELP.to_owned());
        family.set_field_type(MetricType::GAUGE);
        family.set_metric(metrics);
        vec![family]
    }
}
