//! The Grafana dashboard of the objectives: the error budget left over the period, and the burn rates
//! over the alerts' windows, for every objective the selected services declare (the `slo` variable).

use serde_json::{Value, json};

use super::burn::{PERIOD, WINDOWS};
use super::sli::Sli;

fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// The recorded bad ratio of `sli` over `window`, as a multiple of the objective's budget.
fn burn_rate(sli: Sli, window: &str) -> String {
    format!(
        "{}{{job=~\"$job\",slo=~\"$slo\"}} / on (slo) group_left () hardened:slo_error_budget:ratio{{sli=\"{}\"}}",
        Sli::ratio(sli, WINDOWS.iter().copied().find(|candidate| candidate.name == window).unwrap_or(PERIOD)),
        sli.label()
    )
}

fn target(expr: &str, legend: &str, ref_id: &str) -> Value {
    json!({
        "refId": ref_id,
        "datasource": datasource(),
        "expr": expr,
        "legendFormat": legend,
        "range": true,
        "instant": false
    })
}

fn variable(name: &str, label: &str, definition: &str) -> Value {
    json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "query": { "query": definition, "refId": format!("{name}-variable") },
        "definition": definition,
        "refresh": 2,
        "sort": 1,
        "multi": true,
        "includeAll": true,
        "allValue": ".*",
        "current": { "selected": true, "text": ["All"], "value": ["$__all"] },
        "hide": 0,
        "options": [],
        "regex": ""
    })
}

fn budget_left(id: u64, sli: Sli, x: u64) -> Value {
    let expr = format!("1 - ({})", burn_rate(sli, PERIOD.name));
    json!({
        "type": "stat",
        "title": format!("Error budget left ({})", sli.label()),
        "description": format!(
            "The share of each objective's {} error budget not yet spent over the last {}: 1 - the bad ratio / \
             the budget (hardened:slo_{}_bad_ratio:rate{}, hardened:slo_error_budget:ratio). Below 0, the objective \
             is missed.",
            sli.label(), PERIOD.name, sli.label(), PERIOD.name
        ),
        "id": id,
        "datasource": datasource(),
        "gridPos": { "h": 6, "w": 12, "x": x, "y": 0 },
        "targets": [target(&expr, "{{slo}} ({{job}})", "A")],
        "fieldConfig": {
            "defaults": {
                "unit": "percentunit",
                "decimals": 1,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        { "color": "red", "value": null },
                        { "color": "orange", "value": 0 },
                        { "color": "green", "value": 0.25 }
                    ]
                }
            },
            "overrides": []
        },
        "options": { "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false }, "colorMode": "background" }
    })
}

fn burn_rates(id: u64, sli: Sli, x: u64) -> Value {
    let targets: Vec<Value> = ["5m", "1h", "6h", "1d", "3d"]
        .iter()
        .zip(["A", "B", "C", "D", "E"])
        .map(|(window, ref_id)| target(&burn_rate(sli, window), &format!("{{{{slo}}}} {window}"), ref_id))
        .collect();
    json!({
        "type": "timeseries",
        "title": format!("Burn rate ({})", sli.label()),
        "description": format!(
            "How many times faster than the objective allows each {} error budget burns, over 5 m, 1 h, 6 h, 1 d \
             and 3 d. HardenedSLOFastBurn pages at 14.4 (1 h and 5 m) or 6 (6 h and 30 m); HardenedSLOSlowBurn \
             opens a ticket at 3 (1 d and 2 h) or 1 (3 d and 6 h).",
            sli.label()
        ),
        "id": id,
        "datasource": datasource(),
        "gridPos": { "h": 9, "w": 12, "x": x, "y": 6 },
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": "none",
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        { "color": "green", "value": null },
                        { "color": "orange", "value": 1 },
                        { "color": "red", "value": 6 }
                    ]
                },
                "custom": { "thresholdsStyle": { "mode": "dashed" } }
            },
            "overrides": []
        },
        "options": { "legend": { "displayMode": "table", "placement": "bottom" }, "tooltip": { "mode": "multi" } }
    })
}

/// The dashboard, as pretty JSON with a final newline.
pub(crate) fn render() -> String {
    let panels = vec![
        budget_left(1, Sli::Success, 0),
        budget_left(2, Sli::Latency, 12),
        burn_rates(3, Sli::Success, 0),
        burn_rates(4, Sli::Latency, 12),
    ];
    let board = json!({
        "uid": "hardened-slo",
        "title": "agent-server: service level objectives",
        "description": "The objectives the functions declare (#[hardened(slo(..))]): error budget left and burn rates. \
                        Generated by hardened::slo with the rules of deploy/prometheus/slo.yml; docs/observability.md \
                        explains each panel, docs/runbook.md what to do when an objective alerts.",
        "tags": ["hardened", "agent-server", "slo"],
        "timezone": "utc",
        "editable": true,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": { "from": "now-7d", "to": "now" },
        "annotations": { "list": [{
            "builtIn": 1,
            "datasource": { "type": "grafana", "uid": "-- Grafana --" },
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard"
        }] },
        "links": [{
            "title": "hardened dashboards",
            "type": "dashboards",
            "tags": ["hardened"],
            "asDropdown": true,
            "includeVars": true,
            "keepTime": true
        }],
        "templating": { "list": [
            {
                "name": "datasource",
                "label": "Prometheus",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "refresh": 1,
                "regex": "",
                "options": []
            },
            variable("job", "job", "label_values(hardened_build_info, job)"),
            variable("slo", "objective", "label_values(hardened_slo_info{job=~\"$job\"}, slo)")
        ] },
        "panels": panels
    });
    let mut text = serde_json::to_string_pretty(&board).unwrap_or_default();
    text.push('\n');
    text
}
