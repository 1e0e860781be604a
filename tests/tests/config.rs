//! Configuration: the TOML file, environment overrides, errors, unused names and rendering.
//!
//! Nothing here reads the process environment: overrides are passed as explicit lists, and `load()` runs
//! in a child process of this test binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hardened::breaker::{BreakerConfig, WindowKind};
use hardened::bulkhead::BulkheadConfig;
use hardened::config::{
    self, BreakerSettings, BulkheadSettings, Config, ConfigError, DeclaredNames, HealthSettings, RateSettings,
    RetrySettings, ServerSettings, ShutdownSettings, TelemetrySettings, UnusedName,
};
use hardened::rate_limit::{OnUnavailable, RateConfig, Scope};
use hardened::retry::RetryConfig;
use hardened::shutdown::ShutdownConfig;
use proptest::prelude::*;

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
        let dir = std::env::temp_dir().join(format!("hardened-config-{test}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        TempDir(dir)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).expect("write the file");
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

fn parse_error(toml: &str) -> String {
    config::parse(toml, "hardened.toml").expect_err("the file is invalid").to_string()
}

fn env_error(config: Config, pairs: &[(&str, &str)]) -> String {
    config::with_env(config, vars(pairs)).expect_err("the environment is invalid").to_string()
}

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn millis(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[test]
fn every_key_of_every_section_is_read() {
    let toml = r#"
        [breaker.default]
        failure_rate = 40

        [breaker.llm]
        failure_rate = 60
        slow_rate = 80
        slow_call = "10s"
        window = 50
        window_kind = "time"
        min_calls = 5
        open_for = "1m 30s"
        half_open_calls = 2
        consecutive_failures = 7
        extend_open_on_failure = true

        [rate.search_api]
        per_second = "100/min"
        burst = 20
        wait = "250ms"

        [bulkhead.orchestrator]
        max = 5
        wait = "2s"

        [retry.llm]
        attempts = 3
        backoff = "200ms"
        max_backoff = "10s"
        jitter = false
        budget_ratio = 0.1
        budget_reserve = 20

        [retry.default]
    "#;
    let config = config::parse(toml, "hardened.toml").expect("a valid file");

    let expected = Config {
        breaker: BTreeMap::from([
            ("default".to_owned(), BreakerSettings { failure_rate: Some(40), ..BreakerSettings::default() }),
            (
                "llm".to_owned(),
                BreakerSettings {
                    failure_rate: Some(60),
                    slow_rate: Some(80),
                    slow_call: Some(secs(10)),
                    window: Some(50),
                    window_kind: Some(WindowKind::Time),
                    min_calls: Some(5),
                    open_for: Some(secs(90)),
                    half_open_calls: Some(2),
                    consecutive_failures: Some(7),
                    extend_open_on_failure: Some(true),
                },
            ),
        ]),
        rate: BTreeMap::from([(
            "search_api".to_owned(),
            RateSettings {
                per_second: Some((100, secs(60))),
                burst: Some(20),
                wait: Some(millis(250)),
                ..RateSettings::default()
            },
        )]),
        bulkhead: BTreeMap::from([("orchestrator".to_owned(), BulkheadSettings { max: Some(5), wait: Some(secs(2)) })]),
        retry: BTreeMap::from([
            ("default".to_owned(), RetrySettings::default()),
            (
                "llm".to_owned(),
                RetrySettings {
                    attempts: Some(3),
                    backoff: Some(millis(200)),
                    max_backoff: Some(secs(10)),
                    jitter: Some(false),
                    budget_ratio: Some(0.1),
                    budget_reserve: Some(20),
                },
            ),
        ]),
        ..Config::default()
    };
    assert_eq!(config, expected);
}

#[test]
fn rates_are_read_the_way_the_macro_reads_them() {
    let cases = [
        ("10", (10, secs(1))),
        ("2.5", (1, millis(400))),
        (r#""100/min""#, (100, secs(60))),
        (r#""100/m""#, (100, secs(60))),
        (r#""7/s""#, (7, secs(1))),
        (r#""5/h""#, (5, secs(3600))),
        (r#""3/10s""#, (3, secs(10))),
        (r#""1/400ms""#, (1, millis(400))),
    ];
    for (written, expected) in cases {
        let config = config::parse(&format!("[rate.api]\nper_second = {written}"), "hardened.toml").expect(written);
        assert_eq!(config.rate["api"].per_second, Some(expected), "per_second = {written}");
        let text = written.trim_matches('"');
        let config =
            config::with_env(Config::default(), vars(&[("HARDENED_RATE__API__PER_SECOND", text)])).expect(written);
        assert_eq!(config.rate["api"].per_second, Some(expected), "HARDENED_RATE__API__PER_SECOND={text}");
    }
}

#[test]
fn every_key_is_read_from_the_environment() {
    let config = config::with_env(
        Config::default(),
        vars(&[
            ("HARDENED_BREAKER__LLM__FAILURE_RATE", "60"),
            ("HARDENED_BREAKER__LLM__SLOW_RATE", "80"),
            ("HARDENED_BREAKER__LLM__SLOW_CALL", "10s"),
            ("HARDENED_BREAKER__LLM__WINDOW", "50"),
            ("HARDENED_BREAKER__LLM__WINDOW_KIND", "time"),
            ("HARDENED_BREAKER__LLM__MIN_CALLS", "5"),
            ("HARDENED_BREAKER__LLM__OPEN_FOR", "1m 30s"),
            ("HARDENED_BREAKER__LLM__HALF_OPEN_CALLS", "2"),
            ("HARDENED_BREAKER__LLM__CONSECUTIVE_FAILURES", "7"),
            ("HARDENED_BREAKER__LLM__EXTEND_OPEN_ON_FAILURE", "true"),
            ("HARDENED_RATE__SEARCH_API__PER_SECOND", "100/min"),
            ("HARDENED_RATE__SEARCH_API__BURST", "20"),
            ("HARDENED_RATE__SEARCH_API__WAIT", "250ms"),
            ("HARDENED_BULKHEAD__DEFAULT__MAX", "5"),
            ("HARDENED_BULKHEAD__DEFAULT__WAIT", "2s"),
            ("HARDENED_RETRY__LLM__ATTEMPTS", "3"),
            ("HARDENED_RETRY__LLM__BACKOFF", "200ms"),
            ("HARDENED_RETRY__LLM__MAX_BACKOFF", "10s"),
            ("HARDENED_RETRY__LLM__JITTER", "false"),
            ("HARDENED_RETRY__LLM__BUDGET_RATIO", "0.1"),
            ("HARDENED_RETRY__LLM__BUDGET_RESERVE", "20"),
        ]),
    )
    .expect("valid overrides");
    let toml = r#"
        [breaker.llm]
        failure_rate = 60
        slow_rate = 80
        slow_call = "10s"
        window = 50
        window_kind = "time"
        min_calls = 5
        open_for = "90s"
        half_open_calls = 2
        consecutive_failures = 7
        extend_open_on_failure = true

        [rate.search_api]
        per_second = "100/min"
        burst = 20
        wait = "250ms"

        [bulkhead.default]
        max = 5
        wait = "2s"

        [retry.llm]
        attempts = 3
        backoff = "200ms"
        max_backoff = "10s"
        jitter = false
        budget_ratio = 0.1
        budget_reserve = 20
    "#;
    assert_eq!(config, config::parse(toml, "hardened.toml").expect("a valid file"));
}

#[test]
fn settings_change_only_what_they_set() {
    let mut breaker = BreakerConfig::default();
    BreakerSettings::default().apply_to(&mut breaker);
    assert_eq!(breaker, BreakerConfig::default());
    let settings = BreakerSettings {
        failure_rate: Some(60),
        window_kind: Some(WindowKind::Time),
        consecutive_failures: Some(4),
        extend_open_on_failure: Some(true),
        ..BreakerSettings::default()
    };
    settings.apply_to(&mut breaker);
    let mut expected = BreakerConfig::default();
    expected.failure_rate = 60;
    expected.window_kind = WindowKind::Time;
    expected.consecutive_failures = Some(4);
    expected.extend_open_on_failure = true;
    assert_eq!(breaker, expected);

    let mut bulkhead = BulkheadConfig::default();
    BulkheadSettings { max: None, wait: Some(secs(1)) }.apply_to(&mut bulkhead);
    assert_eq!((bulkhead.max, bulkhead.wait), (BulkheadConfig::default().max, Some(secs(1))));

    let mut retry = RetryConfig::default();
    RetrySettings { attempts: Some(5), budget_ratio: Some(0.5), ..RetrySettings::default() }.apply_to(&mut retry);
    let mut expected = RetryConfig::default();
    expected.attempts = 5;
    expected.budget_ratio = 0.5;
    assert_eq!(retry, expected);
}

#[test]
fn a_rate_without_a_burst_sets_the_burst_like_the_macro() {
    let mut rate = RateConfig::default();
    RateSettings { per_second: Some((100, secs(60))), ..RateSettings::default() }.apply_to(&mut rate);
    assert_eq!((rate.calls, rate.period, rate.burst, rate.wait), (100, secs(60), 100, None));

    let mut rate = RateConfig::default();
    RateSettings {
        per_second: Some((100, secs(60))),
        burst: Some(5),
        wait: Some(millis(50)),
        ..RateSettings::default()
    }
    .apply_to(&mut rate);
    assert_eq!((rate.calls, rate.period, rate.burst, rate.wait), (100, secs(60), 5, Some(millis(50))));

    let mut rate = RateConfig::default();
    RateSettings { burst: Some(3), ..RateSettings::default() }.apply_to(&mut rate);
    assert_eq!((rate.calls, rate.burst), (RateConfig::default().calls, 3));
}

#[test]
fn a_global_rate_limiter_is_configured_in_its_section_and_from_the_environment() {
    let file = "[rate.anthropic]\nper_second = 50\nburst = 100\nscope = \"global\"\n\
                redis_url = \"redis://redis:6379/0\"\non_unavailable = \"reject\"\n";
    let config = config::parse(file, "hardened.toml").expect("a valid file");
    let vars = vec![
        ("HARDENED_RATE__ANTHROPIC__REDIS_TIMEOUT".to_owned(), "20ms".to_owned()),
        ("HARDENED_RATE__ANTHROPIC__REPLICAS".to_owned(), "10".to_owned()),
    ];
    let config = config::with_env(config, vars).expect("valid overrides");
    let mut rate = RateConfig::default();
    config.rate["anthropic"].apply_to(&mut rate);
    assert_eq!((rate.calls, rate.burst, rate.scope), (50, 100, Scope::Global));
    assert_eq!(rate.redis_url.as_deref(), Some("redis://redis:6379/0"));
    assert_eq!((rate.on_unavailable, rate.redis_timeout, rate.replicas), (OnUnavailable::Reject, millis(20), 10));

    // Each of 10 replicas' share: 50 calls per 10 s (5 per second) and a burst of 10.
    let share = rate.replica_share();
    assert_eq!((share.calls, share.period, share.burst, share.scope), (50, secs(10), 10, Scope::Local));

    // The rendering of a section reads back, and the keys of a global limiter are documented in order.
    let text = config::render(&config);
    assert!(
        text.contains(
            "[rate.anthropic]\nper_second = 50\nburst = 100\nscope = \"global\"\nredis_url = \"redis://redis:6379/0\"\n\
             on_unavailable = \"reject\"\nredis_timeout = \"20ms\"\nreplicas = 10\n"
        ),
        "{text}"
    );
    assert_eq!(config::parse(&text, "rendered").expect("rendered TOML"), Config { source: None, ..config });
}

#[test]
fn the_environment_beats_the_file_key_by_key() {
    let dir = TempDir::new("env-beats-file");
    let file = dir.write(
        "hardened.toml",
        "[breaker.llm]\nfailure_rate = 50\nopen_for = \"30s\"\n\n[rate.search_api]\nper_second = 10\n",
    );
    let config = config::read(
        dir.path(),
        vars(&[
            ("HARDENED_BREAKER__LLM__FAILURE_RATE", "60"),
            ("HARDENED_RATE__SEARCH_API__PER_SECOND", "100/min"),
            ("HARDENED_BULKHEAD__DB__MAX", "3"),
            ("PATH", "/usr/bin"),
        ]),
        &DeclaredNames::default(),
    )
    .expect("a valid configuration");
    assert_eq!(config.source, Some(file));
    assert_eq!(config.breaker["llm"].failure_rate, Some(60));
    assert_eq!(config.breaker["llm"].open_for, Some(secs(30)));
    assert_eq!(config.rate["search_api"].per_second, Some((100, secs(60))));
    assert_eq!(config.bulkhead["db"].max, Some(3));
}

#[test]
fn environment_names_reach_sections_spelled_with_dashes_dots_and_colons() {
    let file =
        "[rate.search-api]\nburst = 5\n\n[breaker.\"app::fetch\"]\nwindow = 20\n\n[bulkhead.\"db.pool\"]\nmax = 2\n";
    let config = config::parse(file, "hardened.toml").expect("a valid file");
    let config = config::with_env(
        config,
        vars(&[
            ("HARDENED_RATE__SEARCH_API__PER_SECOND", "100/min"),
            ("HARDENED_BREAKER__APP__FETCH__FAILURE_RATE", "70"),
            ("HARDENED_BULKHEAD__DB_POOL__WAIT", "1s"),
            ("HARDENED_RETRY__PAYMENTS_API__ATTEMPTS", "4"),
        ]),
    )
    .expect("valid overrides");
    assert_eq!(
        config.rate["search-api"],
        RateSettings { per_second: Some((100, secs(60))), burst: Some(5), ..RateSettings::default() }
    );
    assert_eq!(config.breaker["app::fetch"].failure_rate, Some(70));
    assert_eq!(config.breaker["app::fetch"].window, Some(20));
    assert_eq!(config.bulkhead["db.pool"], BulkheadSettings { max: Some(2), wait: Some(secs(1)) });
    // No section and no declared name: the name part in lower case.
    assert_eq!(config.retry.keys().collect::<Vec<_>>(), ["payments_api"]);

    // Declared names are candidates too.
    let declared = DeclaredNames { retry: vec!["payments-api".to_owned()], ..DeclaredNames::default() };
    let config =
        config::with_env_for(Config::default(), vars(&[("HARDENED_RETRY__PAYMENTS_API__ATTEMPTS", "4")]), &declared)
            .expect("valid overrides");
    assert_eq!(config.retry.keys().collect::<Vec<_>>(), ["payments-api"]);

    assert_eq!(config::env_name("search-api"), "SEARCH_API");
    assert_eq!(config::env_var("breaker", "app::fetch", "failure_rate"), "HARDENED_BREAKER__APP__FETCH__FAILURE_RATE");
}

#[test]
fn an_environment_name_that_spells_two_sections_is_an_error() {
    let file = "[rate.search-api]\nburst = 5\n\n[rate.search_api]\nburst = 6\n";
    let config = config::parse(file, "hardened.toml").expect("a valid file");
    assert_eq!(
        env_error(config, &[("HARDENED_RATE__SEARCH_API__BURST", "7")]),
        "HARDENED_RATE__SEARCH_API__BURST: SEARCH_API could name any of [rate.search-api], [rate.search_api]; the \
         environment cannot tell them apart, so rename one of them"
    );
}

#[test]
fn environment_sections_names_and_keys_ignore_case() {
    let config = config::parse("[breaker.llm]\nwindow = 10\n", "hardened.toml").expect("a valid file");
    let config = config::with_env(config, vars(&[("HARDENED_Breaker__Llm__Failure_Rate", "65")])).expect("valid");
    assert_eq!(config.breaker["llm"].failure_rate, Some(65));
    assert_eq!(config.breaker["llm"].window, Some(10));

    assert_eq!(
        env_error(
            Config::default(),
            &[("HARDENED_BREAKER__LLM__FAILURE_RATE", "60"), ("HARDENED_breaker__llm__failure_rate", "70")]
        ),
        "HARDENED_BREAKER__LLM__FAILURE_RATE, HARDENED_breaker__llm__failure_rate each set breaker.llm.failure_rate; \
         keep one of them"
    );
}

#[test]
fn variables_that_are_not_overrides_are_left_alone() {
    let config = config::with_env(
        Config::default(),
        vars(&[
            ("HARDENED_CONFIG", "/etc/hardened.toml"),
            ("HARDENED_LOG", "debug"),
            ("PATH", "/usr/bin"),
            ("hardened_breaker__llm__failure_rate", "500"),
        ]),
    )
    .expect("nothing to apply");
    assert_eq!(config, Config::default());
}

const DURATION_ALLOWED: &str = "a duration longer than zero, such as \"30s\", \"250ms\" or \"1m 30s\"";
const RATE_ALLOWED: &str =
    "a rate above zero: 10 or 2.5 (calls per second), or a string such as \"100/min\", \"5/h\" or \"3/10s\"";

#[test]
fn invalid_file_values_name_the_file_the_key_the_value_and_what_is_allowed() {
    let cases = [
        (
            "[breaker.llm]\nfailure_rate = 101",
            "breaker.llm.failure_rate = 101 is out of range",
            "a whole number from 1 to 100",
        ),
        (
            "[breaker.llm]\nslow_rate = \"50\"",
            "breaker.llm.slow_rate = \"50\" is not a whole number",
            "a whole number from 1 to 100",
        ),
        (
            "[breaker.llm]\nwindow = 2000000",
            "breaker.llm.window = 2000000 is out of range",
            "a whole number from 1 to 1048576",
        ),
        (
            "[breaker.llm]\nwindow_kind = \"sliding\"",
            "breaker.llm.window_kind = \"sliding\" is not a window kind",
            "\"count\" or \"time\"",
        ),
        ("[breaker.llm]\nopen_for = \"0s\"", "breaker.llm.open_for = \"0s\" is out of range", DURATION_ALLOWED),
        ("[breaker.llm]\nslow_call = 30", "breaker.llm.slow_call = 30 is not a duration", DURATION_ALLOWED),
        (
            "[breaker.llm]\nmin_calls = 0",
            "breaker.llm.min_calls = 0 is out of range",
            "a whole number from 1 to 4294967295",
        ),
        (
            "[breaker.llm]\nextend_open_on_failure = \"yes\"",
            "breaker.llm.extend_open_on_failure = \"yes\" is not true or false",
            "true or false",
        ),
        ("[rate.api]\nper_second = 0", "rate.api.per_second = 0 is out of range", RATE_ALLOWED),
        ("[rate.api]\nper_second = \"ten/min\"", "rate.api.per_second = \"ten/min\" is not a rate", RATE_ALLOWED),
        (
            "[rate.api]\nper_second = \"5/fortnight\"",
            "rate.api.per_second = \"5/fortnight\" is not a rate",
            RATE_ALLOWED,
        ),
        ("[rate.api]\nper_second = 5000000000", "rate.api.per_second = 5000000000 is out of range", RATE_ALLOWED),
        ("[rate.api]\nburst = 0", "rate.api.burst = 0 is out of range", "a whole number from 1 to 4294967295"),
        ("[rate.api]\nscope = \"cluster\"", "rate.api.scope = \"cluster\" is not a scope", "\"local\" or \"global\""),
        ("[rate.api]\nscope = true", "rate.api.scope = true is not a scope", "\"local\" or \"global\""),
        (
            "[rate.api]\non_unavailable = \"allow\"",
            "rate.api.on_unavailable = \"allow\" is not a policy",
            "\"local\" or \"reject\"",
        ),
        (
            "[rate.api]\nredis_url = \"http://redis:6379\"",
            "rate.api.redis_url = \"http://redis:6379\" is not a Redis URL",
            "a URL such as \"redis://redis:6379/0\", with redis://, rediss:// or unix://",
        ),
        (
            "[rate.api]\nredis_url = \"redis://\"",
            "rate.api.redis_url = \"redis://\" is not a Redis URL",
            "a URL such as \"redis://redis:6379/0\", with redis://, rediss:// or unix://",
        ),
        ("[rate.api]\nredis_timeout = \"0ms\"", "rate.api.redis_timeout = \"0ms\" is out of range", DURATION_ALLOWED),
        ("[rate.api]\nreplicas = 0", "rate.api.replicas = 0 is out of range", "a whole number from 1 to 4294967295"),
        ("[bulkhead.db]\nmax = -1", "bulkhead.db.max = -1 is out of range", "a whole number from 1 to 4294967295"),
        ("[bulkhead.db]\nwait = \"soon\"", "bulkhead.db.wait = \"soon\" is not a duration", DURATION_ALLOWED),
        ("[retry.llm]\nattempts = 101", "retry.llm.attempts = 101 is out of range", "a whole number from 1 to 100"),
        ("[retry.llm]\nbudget_ratio = 1.5", "retry.llm.budget_ratio = 1.5 is out of range", "a number from 0.0 to 1.0"),
        (
            "[retry.llm]\nbackoff = \"2s\"\nmax_backoff = \"1s\"",
            "retry.llm.max_backoff = \"1s\" is shorter than backoff (2s)",
            "a duration at least as long as backoff",
        ),
        ("[breaker]\nllm = 5", "breaker.llm = 5 is not a table", "a [breaker.llm] section of breaker settings"),
        ("breaker = 5", "breaker = 5 is not a table", "sections such as [breaker.default] and [breaker.<name>]"),
    ];
    for (toml, setting, allowed) in cases {
        assert_eq!(parse_error(toml), format!("hardened.toml: {setting}; allowed: {allowed}"), "for {toml:?}");
    }
    assert_eq!(
        parse_error("[breaker.\"my llm\"]\nwindow = 5"),
        "hardened.toml: [breaker.\"my llm\"] is not a guard name; allowed: ASCII letters, digits, _, ., : and -"
    );
}

#[test]
fn invalid_environment_values_name_the_variable_the_key_the_value_and_what_is_allowed() {
    assert_eq!(
        env_error(Config::default(), &[("HARDENED_BREAKER__LLM__WINDOW_KIND", "sliding")]),
        "HARDENED_BREAKER__LLM__WINDOW_KIND=sliding (breaker.llm.window_kind) is not a window kind; allowed: \"count\" \
         or \"time\""
    );
    assert_eq!(
        env_error(Config::default(), &[("HARDENED_BREAKER__LLM__FAILURE_RATE", "101")]),
        "HARDENED_BREAKER__LLM__FAILURE_RATE=101 (breaker.llm.failure_rate) is out of range; allowed: a whole number \
         from 1 to 100"
    );
    assert_eq!(
        env_error(Config::default(), &[("HARDENED_RETRY__LLM__JITTER", "yes")]),
        "HARDENED_RETRY__LLM__JITTER=yes (retry.llm.jitter) is not true or false; allowed: true or false"
    );
    let file = config::parse("[retry.llm]\nmax_backoff = \"5s\"\n", "hardened.toml").expect("a valid file");
    assert_eq!(
        env_error(file, &[("HARDENED_RETRY__LLM__BACKOFF", "10s")]),
        "HARDENED_RETRY__LLM__BACKOFF=10s (retry.llm.backoff) is longer than max_backoff (5s); allowed: a duration no \
         longer than max_backoff"
    );
}

#[test]
fn unknown_keys_and_sections_are_rejected_with_a_suggestion() {
    let breaker_keys = "failure_rate, slow_rate, slow_call, window, window_kind, min_calls, open_for, \
                        half_open_calls, consecutive_failures, extend_open_on_failure";
    assert_eq!(
        parse_error("[breaker.llm]\nfailur_rate = 50\n"),
        format!(
            "hardened.toml: unknown key breaker.llm.failur_rate; did you mean failure_rate? allowed keys: \
             {breaker_keys}"
        )
    );
    assert_eq!(
        parse_error("[rate.api]\nqps = 5\n"),
        "hardened.toml: unknown key rate.api.qps; allowed keys: per_second, per_minute, per_hour, burst, wait, scope, \
         redis_url, on_unavailable, redis_timeout, replicas, max_keys"
    );
    assert_eq!(
        parse_error("[breakers.llm]\nfailure_rate = 50\n"),
        "hardened.toml: unknown section breakers; did you mean breaker? allowed sections: breaker, rate, \
         concurrency, bulkhead, retry, hedge, slo, metrics, telemetry, health, shutdown, server"
    );
    assert_eq!(
        env_error(Config::default(), &[("HARDENED_BREAKER__LLM__FAILUR_RATE", "50")]),
        format!(
            "HARDENED_BREAKER__LLM__FAILUR_RATE: unknown key breaker.llm.failur_rate; did you mean failure_rate? \
             allowed keys: {breaker_keys}"
        )
    );
    assert_eq!(
        env_error(Config::default(), &[("HARDENED_BULKHEADS__DB__MAX", "5")]),
        "HARDENED_BULKHEADS__DB__MAX: unknown section bulkheads; did you mean bulkhead? allowed sections: breaker, \
         rate, concurrency, bulkhead, retry, hedge, slo, metrics, telemetry, health, shutdown, server"
    );
    assert_eq!(
        env_error(Config::default(), &[("HARDENED_BREAKER__FAILURE_RATE", "50")]),
        "HARDENED_BREAKER__FAILURE_RATE: not a configuration override; allowed: HARDENED_<SECTION>__<NAME>__<KEY> for \
         guards, such as HARDENED_BREAKER__LLM__FAILURE_RATE, and HARDENED_<SECTION>__<KEY> for telemetry, health, \
         shutdown and server, such as HARDENED_SHUTDOWN__DEADLINE"
    );
}

#[test]
fn the_service_sections_are_read_from_the_file_and_the_environment() {
    let file = r#"
        [telemetry]
        service_name = "agent"
        service_version = "1.4.0"
        environment = "production"
        endpoint = "http://collector:4317"
        protocol = "grpc"
        sample_ratio = 0.1
        log_format = "json"
        log_filter = "info,hyper=warn"
        trace_filter = "debug"
        metrics_exporter = "prometheus, otlp"
        metrics_endpoint = "http://collector:4318/v1/metrics"
        metrics_protocol = "http/protobuf"
        metric_export_interval = "15s"
        metrics_temporality = "delta"
        exemplars = false

        [health]
        cache_ttl = "2s"
        check_timeout = "1s"
        watchdog_interval = "100ms"
        watchdog_max_lag = "500ms"
        audit_max_backlog = 5000

        [shutdown]
        pre_stop_delay = "0s"
        drain_timeout = "10s"
        deadline = "20s"

        [server]
        address = "0.0.0.0:8080"
        admin_address = "127.0.0.1:9090"
        admin_token = "s3cret"
        admin_unauthenticated = false
        trust_forwarded_for = true
    "#;
    let config = config::parse(file, "hardened.toml").expect("the file is valid");
    assert_eq!(
        config.telemetry,
        TelemetrySettings {
            service_name: Some("agent".to_owned()),
            service_version: Some("1.4.0".to_owned()),
            environment: Some("production".to_owned()),
            endpoint: Some("http://collector:4317".to_owned()),
            protocol: Some("grpc".to_owned()),
            sample_ratio: Some(0.1),
            log_format: Some("json".to_owned()),
            log_filter: Some("info,hyper=warn".to_owned()),
            trace_filter: Some("debug".to_owned()),
            metrics_exporter: Some("prometheus,otlp".to_owned()),
            metrics_endpoint: Some("http://collector:4318/v1/metrics".to_owned()),
            metrics_protocol: Some("http/protobuf".to_owned()),
            metric_export_interval: Some(secs(15)),
            metrics_temporality: Some("delta".to_owned()),
            exemplars: Some(false),
        }
    );
    let mut telemetry = hardened::telemetry::TelemetryConfig::default();
    config.telemetry.apply_to(&mut telemetry);
    assert_eq!(telemetry.metrics_exporters, hardened::telemetry::MetricsExporters::BOTH);
    assert_eq!(telemetry.metrics_url().as_deref(), Some("http://collector:4318/v1/metrics"));
    assert_eq!(telemetry.metrics_protocol(), hardened::telemetry::Protocol::HttpProtobuf);
    assert_eq!(telemetry.metric_export_interval, secs(15));
    assert_eq!(telemetry.metrics_temporality, hardened::telemetry::MetricsTemporality::Delta);
    assert_eq!(
        config.health,
        HealthSettings {
            cache_ttl: Some(secs(2)),
            check_timeout: Some(secs(1)),
            watchdog_interval: Some(millis(100)),
            watchdog_max_lag: Some(millis(500)),
            audit_max_backlog: Some(5000),
        }
    );
    let mut shutdown = ShutdownConfig::default();
    config.shutdown.apply_to(&mut shutdown);
    assert_eq!(
        shutdown,
        ShutdownConfig { pre_stop_delay: Duration::ZERO, drain_timeout: secs(10), deadline: secs(20) }
    );
    assert_eq!(config.server.address, Some(([0, 0, 0, 0], 8080).into()));
    assert_eq!(config.server.admin_address, Some(([127, 0, 0, 1], 9090).into()));
    assert_eq!(config.server.trust_forwarded_for, Some(true));
    assert_eq!(config.server.admin_token.as_deref(), Some("s3cret"));
    assert_eq!(config.server.admin_unauthenticated, Some(false));
    assert!(!format!("{:?}", config.server).contains("s3cret"), "the token is masked in Debug");
    assert!(!config::render(&config).contains("s3cret"), "and when rendered");

    let config = config::with_env(
        config,
        vars(&[
            ("HARDENED_TELEMETRY__SAMPLE_RATIO", "1"),
            ("HARDENED_SHUTDOWN__DEADLINE", "15s"),
            ("HARDENED_Server__Address", "127.0.0.1:8081"),
        ]),
    )
    .expect("the overrides are valid");
    assert_eq!(config.telemetry.sample_ratio, Some(1.0), "the environment wins");
    assert_eq!(config.telemetry.service_name.as_deref(), Some("agent"), "key by key");
    assert_eq!(config.shutdown.deadline, Some(secs(15)));
    assert_eq!(config.server.address, Some(([127, 0, 0, 1], 8081).into()), "section and key ignore case");
}

#[test]
fn invalid_service_settings_name_the_key_the_value_and_what_is_allowed() {
    assert_eq!(
        parse_error("[telemetry]\nprotocol = \"http\"\n"),
        r#"hardened.toml: telemetry.protocol = "http" is not one of the choices; allowed: one of "grpc", "http/protobuf""#
    );
    assert_eq!(
        parse_error("[telemetry]\nmetrics_exporter = \"otlp,console\"\n"),
        r#"hardened.toml: telemetry.metrics_exporter = "otlp,console" names an exporter it does not know; allowed: a comma-separated list of "prometheus", "otlp", "none""#
    );
    assert_eq!(
        parse_error("[telemetry]\nsample_ratio = 1.5\n"),
        "hardened.toml: telemetry.sample_ratio = 1.5 is out of range; allowed: a number from 0.0 to 1.0"
    );
    assert_eq!(
        parse_error("[server]\naddress = \"localhost\"\n"),
        r#"hardened.toml: server.address = "localhost" is not an address; allowed: an IP address and port, such as "0.0.0.0:8080" or "[::1]:9090""#
    );
    assert_eq!(
        parse_error("[shutdown]\npre_stop_delay = \"30s\"\n"),
        r#"hardened.toml: shutdown.pre_stop_delay = "30s" is not shorter than the deadline (25s); allowed: a duration shorter than deadline"#
    );
    assert_eq!(
        parse_error("[shutdown]\ndeadlin = \"30s\"\n"),
        "hardened.toml: unknown key shutdown.deadlin; did you mean deadline? allowed keys: pre_stop_delay, \
         drain_timeout, deadline"
    );
    assert_eq!(
        parse_error("[health]\ncheck_timeout = \"0s\"\n"),
        r#"hardened.toml: health.check_timeout = "0s" is out of range; allowed: a duration longer than zero, such as "30s", "250ms" or "1m 30s""#
    );
    assert_eq!(
        env_error(Config::default(), &[("HARDENED_SHUTDOWN__DEADLINE", "soon")]),
        r#"HARDENED_SHUTDOWN__DEADLINE=soon (shutdown.deadline) is not a duration; allowed: a duration longer than zero, such as "30s", "250ms" or "1m 30s""#
    );
    assert_eq!(
        env_error(Config::default(), &[("HARDENED_SHUTDOWN__MAIN__DEADLINE", "20s")]),
        "HARDENED_SHUTDOWN__MAIN__DEADLINE: not a configuration override; allowed: HARDENED_<SECTION>__<NAME>__<KEY> \
         for guards, such as HARDENED_BREAKER__LLM__FAILURE_RATE, and HARDENED_<SECTION>__<KEY> for telemetry, \
         health, shutdown and server, such as HARDENED_SHUTDOWN__DEADLINE"
    );
}

#[test]
fn every_error_of_one_load_is_reported() {
    let dir = TempDir::new("every-error");
    dir.write("hardened.toml", "[breaker.llm]\nfailure_rate = 0\nwindw = 5\n\n[bulkhead.db]\nmax = 0\n");
    let error = config::read(
        dir.path(),
        vars(&[("HARDENED_RATE__API__BURST", "many"), ("HARDENED_RETRY__LLM__ATTEMPTS", "3")]),
        &DeclaredNames::default(),
    )
    .expect_err("three mistakes");
    let origin = dir.path().join("hardened.toml").display().to_string();
    assert!(matches!(error, ConfigError::Several(ref errors) if errors.len() == 4), "{error:?}");
    assert_eq!(error.iter().count(), 4);
    assert_eq!(
        error.to_string(),
        format!(
            "{origin}: breaker.llm.failure_rate = 0 is out of range; allowed: a whole number from 1 to 100\n\
             {origin}: unknown key breaker.llm.windw; did you mean window? allowed keys: failure_rate, slow_rate, \
             slow_call, window, window_kind, min_calls, open_for, half_open_calls, consecutive_failures, \
             extend_open_on_failure\n\
             {origin}: bulkhead.db.max = 0 is out of range; allowed: a whole number from 1 to 4294967295\n\
             HARDENED_RATE__API__BURST=many (rate.api.burst) is not a whole number; allowed: a whole number from 1 to \
             4294967295"
        )
    );
}

#[test]
fn syntax_errors_keep_the_line_and_column() {
    let error = config::parse("[breaker.llm]\nfailure_rate = = 5\n", "hardened.toml").expect_err("not TOML");
    let ConfigError::Syntax { line, column, .. } = &error else { panic!("a syntax error: {error:?}") };
    assert_eq!((*line, *column), (Some(2), Some(16)));
    let message = error.to_string();
    assert!(message.starts_with("hardened.toml: TOML parse error at line 2, column 16"), "{message}");
    assert!(message.contains("failure_rate = = 5"), "{message}");
}

#[test]
fn a_missing_file_named_by_hardened_config_is_an_error_naming_it() {
    let dir = TempDir::new("missing");
    let missing = dir.path().join("nope.toml");
    let error = config::read(
        dir.path(),
        vars(&[("HARDENED_CONFIG", missing.to_str().expect("a UTF-8 path"))]),
        &DeclaredNames::default(),
    )
    .expect_err("no such file");
    assert_eq!(error.to_string(), format!("{}: no such file (named by HARDENED_CONFIG)", missing.display()));
}

#[test]
fn the_file_is_hardened_config_else_hardened_toml_else_none() {
    let dir = TempDir::new("discovery");
    let none = config::read(dir.path(), Vec::new(), &DeclaredNames::default()).expect("no file is no error");
    assert_eq!(none, Config::default());

    let default = dir.write("hardened.toml", "[bulkhead.db]\nmax = 1\n");
    let named = dir.write("custom.toml", "[bulkhead.db]\nmax = 2\n");
    let config = config::read(dir.path(), Vec::new(), &DeclaredNames::default()).expect("hardened.toml");
    assert_eq!((config.bulkhead["db"].max, config.source), (Some(1), Some(default)));

    // A relative HARDENED_CONFIG is relative to the directory, like the current directory for `load()`.
    let config = config::read(dir.path(), vars(&[("HARDENED_CONFIG", "custom.toml")]), &DeclaredNames::default())
        .expect("custom.toml");
    assert_eq!((config.bulkhead["db"].max, config.source), (Some(2), Some(named)));
}

#[test]
fn sections_naming_no_declared_guard_are_reported_with_a_suggestion() {
    let file = "[breaker.default]\n[breaker.llm]\n[breaker.lm]\n[rate.serch_api]\n[rate.zzz]\n[retry.llm]\n";
    let config = config::parse(file, "hardened.toml").expect("a valid file");
    let declared = DeclaredNames {
        breaker: vec!["llm".to_owned()],
        rate: vec!["search_api".to_owned()],
        retry: vec!["llm".to_owned()],
        ..DeclaredNames::default()
    };
    let unused = config::unused_names(&config, &declared);
    assert_eq!(
        unused,
        [
            UnusedName { kind: "breaker", name: "lm".to_owned(), suggestion: Some("llm".to_owned()) },
            UnusedName { kind: "rate", name: "serch_api".to_owned(), suggestion: Some("search_api".to_owned()) },
            UnusedName { kind: "rate", name: "zzz".to_owned(), suggestion: None },
        ]
    );
    let messages: Vec<String> = unused.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "[breaker.lm] names no breaker used by any function; did you mean `llm`?",
            "[rate.serch_api] names no rate limiter used by any function; did you mean `search_api`?",
            "[rate.zzz] names no rate limiter used by any function",
        ]
    );
}

#[test]
fn render_writes_sorted_toml() {
    let config = Config {
        breaker: BTreeMap::from([
            ("llm".to_owned(), BreakerSettings { open_for: Some(secs(90)), ..BreakerSettings::default() }),
            (
                "app::fetch".to_owned(),
                BreakerSettings {
                    failure_rate: Some(60),
                    window_kind: Some(WindowKind::Time),
                    ..BreakerSettings::default()
                },
            ),
        ]),
        rate: BTreeMap::from([
            ("a".to_owned(), RateSettings { per_second: Some((10, secs(1))), ..RateSettings::default() }),
            ("b".to_owned(), RateSettings { per_second: Some((100, secs(60))), ..RateSettings::default() }),
            (
                "c".to_owned(),
                RateSettings { per_second: Some((1, millis(400))), wait: Some(millis(250)), ..RateSettings::default() },
            ),
        ]),
        bulkhead: BTreeMap::from([("db".to_owned(), BulkheadSettings::default())]),
        retry: BTreeMap::from([(
            "default".to_owned(),
            RetrySettings { jitter: Some(false), budget_ratio: Some(0.25), ..RetrySettings::default() },
        )]),
        shutdown: ShutdownSettings { deadline: Some(secs(20)), ..ShutdownSettings::default() },
        source: Some(PathBuf::from("ignored.toml")),
        ..Config::default()
    };
    let text = config::render(&config);
    assert_eq!(
        text,
        "[breaker.\"app::fetch\"]\nfailure_rate = 60\nwindow_kind = \"time\"\n\n\
         [breaker.llm]\nopen_for = \"1m 30s\"\n\n\
         [rate.a]\nper_second = 10\n\n\
         [rate.b]\nper_second = \"100/min\"\n\n\
         [rate.c]\nper_second = \"1/400ms\"\nwait = \"250ms\"\n\n\
         [bulkhead.db]\n\n\
         [retry.default]\njitter = false\nbudget_ratio = 0.25\n\n\
         [shutdown]\ndeadline = \"20s\"\n"
    );
    assert_eq!(config::parse(&text, "rendered").expect("rendered TOML"), Config { source: None, ..config });
}

#[test]
fn install_makes_a_config_current() {
    let config = config::parse("[bulkhead.installed]\nmax = 4\n", "hardened.toml").expect("a valid file");
    let installed = config::install(config.clone());
    assert_eq!(*installed, config);
    assert_eq!(*config::current(), config);
}

/// The name of the variable that tells [`load_in_a_child_process`] it is the child.
const CHILD: &str = "CONFIG_TEST_LOAD_CHILD";

#[test]
fn load_reads_the_file_and_the_process_environment() {
    let dir = TempDir::new("load");
    dir.write("hardened.toml", "[breaker.llm]\nfailure_rate = 10\n");
    dir.write("custom.toml", "[breaker.llm]\nfailure_rate = 20\nwindow = 30\n");
    let mut child = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    child.args(["load_in_a_child_process", "--exact", "--ignored", "--test-threads=1"]).current_dir(dir.path());
    for (variable, _) in std::env::vars_os() {
        if variable.to_string_lossy().starts_with("HARDENED_") {
            child.env_remove(variable);
        }
    }
    child
        .env(CHILD, "1")
        .env("HARDENED_CONFIG", "custom.toml")
        .env("HARDENED_BREAKER__LLM__WINDOW", "40")
        .env("HARDENED_BREAKER__LLM__SLOW_RATE", "90");
    let output = child.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1 passed"), "the child ran no test: {stdout}");
}

#[test]
#[ignore = "run by load_reads_the_file_and_the_process_environment, in its own process"]
fn load_in_a_child_process() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let loaded = config::load().expect("a valid configuration");
    let expected =
        BreakerSettings { failure_rate: Some(20), slow_rate: Some(90), window: Some(40), ..BreakerSettings::default() };
    assert_eq!(loaded.breaker, BTreeMap::from([("llm".to_owned(), expected)]));
    assert_eq!(loaded.source, Some(PathBuf::from("custom.toml")));
    assert_eq!(config::current(), loaded);
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![Just("default".to_owned()), "[a-z][a-z0-9_]{0,8}", "[A-Za-z0-9_.:-]{1,12}"]
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1u64..=86_400).prop_map(Duration::from_secs),
        (1u64..=1_000_000).prop_map(Duration::from_millis),
        (1u64..=3_000_000_000_000_000).prop_map(Duration::from_nanos),
    ]
}

fn breaker_settings() -> impl Strategy<Value = BreakerSettings> {
    (
        proptest::option::of(1u8..=100),
        proptest::option::of(1u8..=100),
        proptest::option::of(duration()),
        proptest::option::of(1u32..=1_048_576),
        proptest::option::of(prop_oneof![Just(WindowKind::Count), Just(WindowKind::Time)]),
        proptest::option::of(1u32..),
        proptest::option::of(duration()),
        proptest::option::of(1u32..),
        proptest::option::of(1u32..),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(
                failure_rate,
                slow_rate,
                slow_call,
                window,
                window_kind,
                min_calls,
                open_for,
                half_open_calls,
                consecutive_failures,
                extend_open_on_failure,
            )| BreakerSettings {
                failure_rate,
                slow_rate,
                slow_call,
                window,
                window_kind,
                min_calls,
                open_for,
                half_open_calls,
                consecutive_failures,
                extend_open_on_failure,
            },
        )
}

fn rate_settings() -> impl Strategy<Value = RateSettings> {
    let per_second = prop_oneof![
        (1u32.., Just(secs(1))),
        (1u32.., Just(secs(60))),
        (1u32.., Just(secs(3600))),
        (1u32.., duration()),
        (0.001f64..1_000_000.0).prop_map(|rate| (1, Duration::from_secs_f64(1.0 / rate))),
    ];
    let redis = (
        proptest::option::of(prop_oneof![Just(Scope::Local), Just(Scope::Global)]),
        proptest::option::of("redis://[a-z]{1,8}(:[0-9]{1,5})?(/[0-9])?"),
        proptest::option::of(prop_oneof![Just(OnUnavailable::Local), Just(OnUnavailable::Reject)]),
        proptest::option::of(duration()),
        proptest::option::of(1u32..),
    );
    let limits =
        (proptest::option::of(1u32..), proptest::option::of(duration()), proptest::option::of(1u32..100_000_000));
    (proptest::option::of(per_second), limits, redis).prop_map(
        |(per_second, (burst, wait, max_keys), (scope, redis_url, on_unavailable, redis_timeout, replicas))| {
            RateSettings {
                per_second,
                burst,
                wait,
                scope,
                redis_url,
                on_unavailable,
                redis_timeout,
                replicas,
                max_keys,
            }
        },
    )
}

fn bulkhead_settings() -> impl Strategy<Value = BulkheadSettings> {
    (proptest::option::of(1u32..), proptest::option::of(duration()))
        .prop_map(|(max, wait)| BulkheadSettings { max, wait })
}

fn retry_settings() -> impl Strategy<Value = RetrySettings> {
    (
        proptest::option::of(1u32..=100),
        proptest::option::of(duration()),
        proptest::option::of(duration()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0]),
        proptest::option::of(1u32..),
    )
        .prop_map(|(attempts, backoff, max_backoff, jitter, budget_ratio, budget_reserve)| {
            // `max_backoff` must be at least `backoff` when both are set.
            let (backoff, max_backoff) = match (backoff, max_backoff) {
                (Some(low), Some(high)) if high < low => (Some(high), Some(low)),
                other => other,
            };
            RetrySettings { attempts, backoff, max_backoff, jitter, budget_ratio, budget_reserve }
        })
}

fn configs() -> impl Strategy<Value = Config> {
    (
        proptest::collection::btree_map(name(), breaker_settings(), 0..4),
        proptest::collection::btree_map(name(), rate_settings(), 0..4),
        proptest::collection::btree_map(name(), bulkhead_settings(), 0..4),
        proptest::collection::btree_map(name(), retry_settings(), 0..4),
    )
        .prop_map(|(breaker, rate, bulkhead, retry)| Config {
            breaker,
            rate,
            bulkhead,
            retry,
            ..Config::default()
        })
}

fn service_sections() -> impl Strategy<Value = (TelemetrySettings, ShutdownSettings, ServerSettings)> {
    let text = || proptest::option::of("[a-z][a-z0-9 ._/:-]{0,12}");
    let telemetry = (
        text(),
        text(),
        proptest::option::of(prop_oneof![Just("grpc".to_owned()), Just("http/protobuf".to_owned())]),
        proptest::option::of(0.0..=1.0f64),
        proptest::option::of(prop_oneof![Just("readable".to_owned()), Just("json".to_owned())]),
    )
        .prop_map(|(service_name, endpoint, protocol, sample_ratio, log_format)| TelemetrySettings {
            service_name,
            endpoint,
            protocol,
            sample_ratio,
            log_format,
            ..TelemetrySettings::default()
        });
    let shutdown = (proptest::option::of(0u64..5_000), proptest::option::of(duration())).prop_map(
        |(pre_stop_millis, drain_timeout)| ShutdownSettings {
            pre_stop_delay: pre_stop_millis.map(Duration::from_millis),
            drain_timeout,
            deadline: Some(secs(25)),
        },
    );
    let server = (
        proptest::option::of(any::<([u8; 4], u16)>().prop_map(std::net::SocketAddr::from)),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(address, trust_forwarded_for)| ServerSettings {
            address,
            trust_forwarded_for,
            ..ServerSettings::default()
        });
    (telemetry, shutdown, server)
}

proptest! {
    #[test]
    fn service_sections_render_then_parse_back((telemetry, shutdown, server) in service_sections()) {
        let config = Config { telemetry, shutdown, server, ..Config::default() };
        let text = config::render(&config);
        let parsed = config::parse(&text, "rendered.toml");
        prop_assert!(parsed.is_ok(), "{text}\n{}", parsed.as_ref().map_or_else(ToString::to_string, |_| String::new()));
        prop_assert_eq!(parsed.ok(), Some(config), "{}", text);
    }

    #[test]
    fn render_then_parse_gives_back_the_config(config in configs()) {
        let text = config::render(&config);
        let parsed = config::parse(&text, "rendered.toml");
        prop_assert!(parsed.is_ok(), "{text}\n{}", parsed.as_ref().map_or_else(ToString::to_string, |_| String::new()));
        prop_assert_eq!(parsed.ok(), Some(config), "{}", text);
    }
}
