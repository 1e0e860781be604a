//! `[metrics.<name>]`: duration histogram bounds and `histogram = false` from the configuration, by kind
//! and by function, layered over the attribute; shown in `/metrics` and over OTLP; checked when read;
//! and, since the metric layout is fixed once calls start, waiting for the next start when a reload
//! changes them.
//!
//! Every test loads the configuration first ([`setup`]), before any call or scrape fixes the layout.

use std::sync::Once;
use std::time::Duration;

use hardened::config::{self, DeclaredNames};
use hardened::hardened;
use hardened::telemetry::{MetricsExporter, MetricsExporters, MetricsTemporality, Protocol, TelemetryConfig};
use hardened_tests::otelsink::OtelSink;
use hardened_tests::{calls, duration_histogram};

const CONFIG: &str = r#"
[metrics.default]
buckets = [0.01, 0.2, 1.5]

[metrics.llm]
buckets = [0.5, 1, 2, 5, 10, 30]

[metrics."metrics_buckets_config::answer_quickly"]
buckets = [0.05, 0.25]

[metrics."metrics_buckets_config::chatty"]
histogram = false

[metrics."metrics_buckets_config::turned_back_on"]
histogram = true

# 200 ms is a bound of [metrics.default], not of the built-in buckets.
[slo.replies]
success = 99
latency = "200ms"
latency_target = 99
"#;

/// Loads [`CONFIG`] once, before anything fixes the metric layout.
fn setup() {
    static LOADED: Once = Once::new();
    LOADED.call_once(|| {
        config::load_text(CONFIG, "hardened.toml").expect("a valid configuration");
    });
}

#[hardened(kind = "llm")]
fn complete() {}

#[hardened(kind = "llm")]
fn answer_quickly() {}

#[hardened(kind = "tool", buckets = [0.002, 0.02])]
fn attribute_buckets() {}

#[hardened(kind = "tool", slo = "replies")]
fn reply() {}

#[hardened(kind = "tool")]
fn chatty() {}

#[hardened(kind = "llm", histogram = false)]
fn turned_back_on() {}

/// The bounds of `function`'s duration histogram in `/metrics`, in seconds; `None` without one.
fn bounds(function: &str) -> Option<Vec<f64>> {
    duration_histogram(function).map(|histogram| histogram.buckets.into_iter().map(|(bound, _)| bound).collect())
}

fn call_each() {
    complete();
    answer_quickly();
    attribute_buckets();
    reply();
    chatty();
    turned_back_on();
}

#[test]
fn the_function_section_beats_the_kind_the_kind_the_attribute_and_the_attribute_the_default_section() {
    setup();
    call_each();
    assert_eq!(bounds("complete"), Some(vec![0.5, 1.0, 2.0, 5.0, 10.0, 30.0]), "[metrics.llm]");
    assert_eq!(bounds("answer_quickly"), Some(vec![0.05, 0.25]), "its own section, over its kind's");
    assert_eq!(bounds("attribute_buckets"), Some(vec![0.002, 0.02]), "the attribute, over [metrics.default]");
    assert_eq!(bounds("reply"), Some(vec![0.01, 0.2, 1.5]), "[metrics.default], over the built-in bounds");
    assert_eq!(bounds("turned_back_on"), Some(vec![0.5, 1.0, 2.0, 5.0, 10.0, 30.0]), "its section, over its attribute");
    assert_eq!(bounds("chatty"), None, "`histogram = false` in its section");
    assert!(calls("chatty", "ok") >= 1, "its counters stay");

    let text = hardened::metrics::render();
    let expected = r#"hardened_call_duration_seconds_bucket{function="complete",module="metrics_buckets_config",kind="llm",le="30"}"#;
    assert!(text.lines().any(|line| line.starts_with(expected)), "{text}");
    assert!(!text.contains(r#"hardened_call_duration_seconds_count{function="chatty""#), "{text}");

    let site = hardened::sites().iter().find(|site| site.name() == "complete").expect("registered");
    assert_eq!(site.buckets().last(), Some(Duration::from_secs(30)));
}

#[test]
fn configured_bounds_travel_over_otlp() {
    setup();
    call_each();
    let sink = OtelSink::start();
    let telemetry = TelemetryConfig {
        service_name: "buckets-test".into(),
        otlp_endpoint: Some(sink.http_endpoint()),
        protocol: Protocol::HttpProtobuf,
        metrics_exporters: MetricsExporters::BOTH,
        metrics_temporality: MetricsTemporality::Cumulative,
        metric_export_interval: Duration::from_hours(1),
        metric_export_timeout: Duration::from_secs(10),
        ..TelemetryConfig::default()
    };
    let exporter = MetricsExporter::start(&telemetry).expect("valid configuration").expect("OTLP metrics are on");
    exporter.export_now().expect("the receiver takes the metrics");
    let duration_of = |points: &[hardened_tests::otelsink::ReceivedPoint], function: &str| {
        points
            .iter()
            .rfind(|point| point.name == "hardened.call.duration" && point.attribute("function") == Some(function))
            .cloned()
    };
    let points = sink.points_when(Duration::from_secs(10), |points| {
        duration_of(points, "complete").is_some() && duration_of(points, "answer_quickly").is_some()
    });
    let complete = duration_of(&points, "complete").expect("exported");
    assert_eq!(complete.line["explicit_bounds"], serde_json::json!([0.5, 1.0, 2.0, 5.0, 10.0, 30.0]));
    let quick = duration_of(&points, "answer_quickly").expect("exported");
    assert_eq!(quick.line["explicit_bounds"], serde_json::json!([0.05, 0.25]));
    assert!(duration_of(&points, "chatty").is_none(), "no histogram, no points");
    exporter.shutdown().expect("the last export is taken");
}

#[test]
fn a_reload_that_changes_a_histogram_takes_effect_at_the_next_start() {
    setup();
    // The layout is fixed by the first call, under CONFIG.
    call_each();
    assert!(hardened::metrics::histograms_pending().is_empty());

    let changed = CONFIG.replace("buckets = [0.5, 1, 2, 5, 10, 30]", "buckets = [1, 10]");
    config::load_text(&changed, "hardened.toml").expect("a valid configuration is taken");
    let reloaded = config::reload_with_changes().expect("the same text again");
    assert_eq!(
        reloaded.histograms_at_next_start,
        ["metrics_buckets_config::complete", "metrics_buckets_config::turned_back_on"],
        "the functions of kind `llm` without a section of their own"
    );
    assert_eq!(bounds("complete"), Some(vec![0.5, 1.0, 2.0, 5.0, 10.0, 30.0]), "the histogram in force stays");
    complete();
    assert_eq!(bounds("complete"), Some(vec![0.5, 1.0, 2.0, 5.0, 10.0, 30.0]), "calls keep counting in it");
    assert_eq!(config::current().metrics["llm"].buckets.as_ref().map(Vec::len), Some(2), "what the next start takes");

    config::load_text(CONFIG, "hardened.toml").expect("back as it was");
    assert!(hardened::metrics::histograms_pending().is_empty(), "nothing waits once the configuration is as it was");
}

#[test]
fn bounds_that_are_no_histogram_are_refused_naming_the_file_the_key_and_what_is_allowed() {
    let allowed = "allowed: a list of 1 to 64 numbers of seconds, each at least 1 ns (0.000000001) and larger than the \
                   one before, such as [0.1, 0.5, 1, 5]";
    let cases = [
        ("[1, 0.5]", "hardened.toml: metrics.llm.buckets = [1, 0.5] holds 0.5 after 1; bounds must increase"),
        ("[]", "hardened.toml: metrics.llm.buckets = [] has no bound"),
        ("[0, 1]", "hardened.toml: metrics.llm.buckets = [0, 1] holds 0, which is not a bound"),
        ("[-1]", "hardened.toml: metrics.llm.buckets = [-1] holds -1, which is not a bound"),
        ("[inf]", "hardened.toml: metrics.llm.buckets = [inf] holds inf, which is not a bound"),
        ("[\"1s\"]", "hardened.toml: metrics.llm.buckets = [\"1s\"] holds \"1s\", which is not a number"),
        ("0.5", "hardened.toml: metrics.llm.buckets = 0.5 is not a list of numbers of seconds"),
    ];
    for (written, problem) in cases {
        let error = config::parse(&format!("[metrics.llm]\nbuckets = {written}\n"), "hardened.toml")
            .expect_err(written)
            .to_string();
        assert_eq!(error, format!("{problem}; {allowed}"), "{written}");
    }
    let many = (1..=65).map(|bound| bound.to_string()).collect::<Vec<_>>().join(", ");
    let error = config::parse(&format!("[metrics.llm]\nbuckets = [{many}]\n"), "hardened.toml").expect_err("65");
    assert!(error.to_string().contains("has 65 bounds, more than 64; allowed: "), "{error}");
    let error = config::parse("[metrics.llm]\nhistogram = \"no\"\n", "hardened.toml").expect_err("not a bool");
    assert_eq!(
        error.to_string(),
        "hardened.toml: metrics.llm.histogram = \"no\" is not true or false; allowed: true or false"
    );
    let error = config::parse("[metrics.llm]\nbucket = [1]\n", "hardened.toml").expect_err("unknown key");
    assert!(error.to_string().contains("unknown key metrics.llm.bucket; did you mean buckets?"), "{error}");

    let vars = [("HARDENED_METRICS__LLM__BUCKETS".to_owned(), "0.5, x".to_owned())];
    let error = config::with_env(config::Config::default(), vars).expect_err("not a number").to_string();
    assert_eq!(
        error,
        format!(
            "HARDENED_METRICS__LLM__BUCKETS=0.5, x (metrics.llm.buckets) holds \"x\", which is not a number; {allowed}"
        )
    );
    let vars = [("HARDENED_METRICS__LLM__BUCKETS".to_owned(), "0.5, 1,2".to_owned())];
    let read = config::with_env(config::Config::default(), vars).expect("valid bounds");
    let expected = [500, 1000, 2000].map(Duration::from_millis).to_vec();
    assert_eq!(read.metrics["llm"].buckets, Some(expected));

    // A load that fails changes nothing.
    setup();
    let bad = CONFIG.replace("buckets = [0.05, 0.25]", "buckets = [0.25, 0.05]");
    let error = config::load_text(&bad, "hardened.toml").expect_err("refused");
    assert!(error.to_string().contains("metrics.\"metrics_buckets_config::answer_quickly\".buckets"), "{error}");
    assert_eq!(
        config::current().metrics["metrics_buckets_config::answer_quickly"].buckets.as_ref().map(Vec::len),
        Some(2)
    );
}

#[test]
fn an_objectives_latency_is_checked_against_the_configured_histograms() {
    setup();
    let objectives = hardened::slo::objectives().expect("200ms is a bound of [metrics.default]");
    let replies = objectives.iter().find(|objective| objective.name == "replies").expect("the objective");
    assert_eq!(replies.latency.map(|latency| latency.threshold), Some(Duration::from_millis(200)));

    let off = format!("{CONFIG}\n[metrics.\"metrics_buckets_config::reply\"]\nhistogram = false\n");
    let error = config::load_text(&off, "hardened.toml").expect_err("no histogram to judge the latency by");
    assert_eq!(
        error.to_string(),
        "objective `replies`: `metrics_buckets_config::reply` has no duration histogram (`histogram = false` in its \
         attribute or in [metrics.<name>]), so its latency cannot be judged; allowed: a histogram for every \
         function of a latency objective, or an objective of `success` only"
    );
    let elsewhere = CONFIG.replace("latency = \"200ms\"", "latency = \"250ms\"");
    let error = config::load_text(&elsewhere, "hardened.toml").expect_err("not a bound").to_string();
    assert!(
        error.starts_with(
            "objective `replies`: latency \"250ms\" is not a bucket bound of `metrics_buckets_config::reply`'s duration \
             histogram; allowed: one of \"10ms\", \"200ms\", \"1s 500ms\""
        ),
        "{error}"
    );
}

#[test]
fn a_section_naming_no_kind_nor_function_is_reported_and_the_environment_finds_a_function() {
    let config = config::parse("[metrics.lm]\nhistogram = false\n", "hardened.toml").expect("valid");
    let declared = DeclaredNames {
        metrics: vec!["llm".to_owned(), "metrics_buckets_config::complete".to_owned()],
        ..DeclaredNames::default()
    };
    let unused: Vec<String> = config::unused_names(&config, &declared).iter().map(ToString::to_string).collect();
    assert_eq!(
        unused,
        ["[metrics.lm] names no kind of function nor function (`module::function`) with metrics; did you mean `llm`?"]
    );

    let vars = [("HARDENED_METRICS__METRICS_BUCKETS_CONFIG__COMPLETE__HISTOGRAM".to_owned(), "false".to_owned())];
    let read = config::with_env_for(config::Config::default(), vars, &declared).expect("valid");
    assert_eq!(read.metrics["metrics_buckets_config::complete"].histogram, Some(false));
}
