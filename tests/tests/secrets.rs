//! A secret planted in a URL's password and query string, carried by the error of a guarded, audited
//! function (as an HTTP client's error carries the URL it failed on) and by configuration values, is in
//! none of the output channels: the audit record, the span's fields, the log lines, the metrics text,
//! the configuration errors and the effective configuration.

use std::sync::OnceLock;
use std::time::Duration;

use hardened::audit::{Auditor, JsonlSink};
use hardened::telemetry::{self, LogFormat};
use hardened::{Rejected, hardened};
use hardened_tests::Capture;
use hardened_tests::log_lines::Lines;
use tracing_subscriber::layer::SubscriberExt as _;

const PASSWORD: &str = "pw-5ecret-7f3a";
const TOKEN: &str = "tok-5ecret-91c2";

/// The URL with both secrets, on a port where nothing listens.
fn secret_url() -> String {
    format!("http://svc:{PASSWORD}@127.0.0.1:9/v1/search?api_key={TOKEN}&q=cats")
}

struct Channels {
    lines: Lines,
    capture: Capture,
    audit_log: std::path::PathBuf,
}

/// The global subscriber (JSON log lines to memory, and a capture of spans) and the audit pipeline
/// (a JSONL file) of this binary.
fn channels() -> &'static Channels {
    static CHANNELS: OnceLock<Channels> = OnceLock::new();
    CHANNELS.get_or_init(|| {
        // The namespace of the Redis limiter's keys, set before any event names the service.
        hardened_tests::redis::service();
        let lines = Lines::default();
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(telemetry::log_layer(LogFormat::Json, lines.clone()))
            .with(capture.clone());
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
        let directory = tempfile::tempdir().expect("a temporary directory").keep();
        let audit_log = directory.join("audit.jsonl");
        let auditor = Auditor::builder()
            .sink(JsonlSink::open(&audit_log).expect("the log opens"))
            .spill_dir(directory.join("spill"))
            .start()
            .expect("the pipeline starts");
        hardened::audit::install(auditor).expect("the first pipeline installed");
        Channels { lines, capture, audit_log }
    })
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
    #[error("fetch failed: {0}")]
    Http(#[from] reqwest::Error),
}

#[hardened(kind = "tool", audit, retry = 1, timeout = "5s")]
async fn fetch(url: &str) -> Result<String, FetchError> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    Ok(client.get(url).send().await?.text().await?)
}

#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug only")]
struct DebugOnly(String);

#[hardened(kind = "tool", audit)]
fn connect(url: &str) -> Result<(), DebugOnly> {
    Err(DebugOnly(format!("cannot reach {url}")))
}

fn assert_free_of_secrets(channel: &str, text: &str) {
    for secret in [PASSWORD, TOKEN] {
        assert!(!text.contains(secret), "{channel} holds the secret {secret}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_a_failing_calls_url_reaches_no_output_channel() {
    let channels = channels();
    let error = fetch(&secret_url()).await.expect_err("nothing listens on port 9");
    assert!(error.to_string().contains("127.0.0.1:9"), "the error names the URL: {error}");
    assert!(connect(&secret_url()).is_err());

    hardened::audit::flush().await.expect("every event is written");
    let audit = std::fs::read_to_string(&channels.audit_log).expect("the audit log");
    let failures: Vec<&str> = audit.lines().filter(|line| line.contains(r#""outcome":"Failure""#)).collect();
    assert_eq!(failures.len(), 2, "{audit}");
    assert!(failures.iter().all(|line| line.contains("127.0.0.1:9/v1/search?api_key=***")), "{audit}");
    assert_free_of_secrets("the audit log", &audit);
    assert!(hardened::audit::verify_jsonl(&channels.audit_log).expect("the log reads").is_intact());

    let spans = {
        let captured = channels.capture.captured();
        [captured.spans("fetch"), captured.spans("connect")].concat()
    };
    assert_eq!(spans.len(), 2);
    for span in &spans {
        let message = span.fields.get("error.message").expect("the failure's message");
        assert!(message.contains("api_key=***"), "{message}");
        assert_free_of_secrets("a span", &format!("{:?}", span.fields));
    }
    assert_free_of_secrets("the log lines", &channels.lines.text());
    assert_free_of_secrets("the metrics", &hardened::metrics::render());
}

#[test]
fn a_secret_in_a_configured_url_reaches_no_configuration_error_nor_the_effective_configuration() {
    channels();
    let wrong_scheme = format!("[rate.search]\nredis_url = \"{}\"\n", secret_url());
    let unterminated = format!("[rate.search]\nredis_url = \"redis://:{PASSWORD}@cache:6379/0?token={TOKEN}\n");
    for text in [wrong_scheme, unterminated] {
        let error = hardened::config::parse(&text, "hardened.toml").expect_err("not a valid configuration");
        assert!(error.to_string().contains("redis_url"), "the error names the key: {error}");
        assert_free_of_secrets("a configuration error", &error.to_string());
        assert_free_of_secrets("a configuration error's Debug", &format!("{error:?}"));
    }

    let from_env = hardened::config::with_env(
        hardened::config::Config::default(),
        [("HARDENED_RATE__SEARCH__REDIS_URL".to_owned(), secret_url())],
    )
    .expect_err("not a Redis URL");
    assert_free_of_secrets("an environment error", &format!("{from_env} {from_env:?}"));

    let global = format!(
        "[rate.search]\nper_second = 5\nscope = \"global\"\nredis_url = \"redis://svc:{PASSWORD}@cache:6379/0?token={TOKEN}\"\n"
    );
    let config = hardened::config::parse(&global, "hardened.toml").expect("a valid configuration");
    let rendered = hardened::config::render(&config);
    assert!(rendered.contains("redis://***@cache:6379/0?token=***"), "{rendered}");
    assert_free_of_secrets("the effective configuration", &rendered);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_a_global_limiters_redis_url_reaches_no_log_line() {
    let channels = channels();
    let url = format!("redis://svc:{PASSWORD}@127.0.0.1:9/0?token={TOKEN}");
    let config = hardened_tests::redis::global_config(5, Duration::from_secs(1), 5, Some(url));
    let limiter = hardened_tests::redis::global_limiter("secret-url", config);
    let _ = limiter.acquire().await;
    assert_free_of_secrets("the log lines", &channels.lines.text());
    assert_free_of_secrets("the metrics", &hardened::metrics::render());
}

#[test]
fn a_secret_in_a_configured_url_reaches_no_debug_output() {
    use hardened::config::{RateSettings, TelemetrySettings};
    use hardened::rate_limit::RateConfig;
    use hardened::telemetry::TelemetryConfig;

    let url = secret_url();
    let mut rate = RateConfig::default();
    rate.redis_url = Some(url.clone());
    let rate_settings = RateSettings { redis_url: Some(url.clone()), ..RateSettings::default() };
    let telemetry = TelemetryConfig {
        otlp_endpoint: Some(url.clone()),
        otlp_traces_endpoint: Some(url.clone()),
        ..TelemetryConfig::default()
    };
    let telemetry_settings = TelemetrySettings { endpoint: Some(url), ..TelemetrySettings::default() };
    for (what, debug) in [
        ("RateConfig", format!("{rate:?}")),
        ("RateSettings", format!("{rate_settings:?}")),
        ("TelemetryConfig", format!("{telemetry:?}")),
        ("TelemetrySettings", format!("{telemetry_settings:?}")),
    ] {
        assert_free_of_secrets(what, &debug);
        assert!(debug.contains("127.0.0.1:9"), "{what} still shows where the URL points: {debug}");
    }
}
