//! The configuration's parsers, checked with generated input: any text as the file and any value for any
//! key, from the file or the environment, is read or refused without a panic and in bounded time, and a
//! refusal names the key at fault.

use std::time::{Duration, Instant};

use hardened::config::{self, Config, ConfigError};
use proptest::prelude::*;

/// Sections of one guard each, written `[kind.name]`.
const KINDS: &[&str] = &["breaker", "rate", "concurrency", "bulkhead", "retry"];
/// Sections of their own, written `[section]`.
const SINGLES: &[&str] = &["telemetry", "health", "shutdown", "server"];

/// What one read may take, however large or garbled the text: far above what it takes.
const BOUNDED: Duration = Duration::from_secs(2);

/// The key paths of every setting, `breaker.<name>.failure_rate` or `telemetry.endpoint`, as the errors
/// for an unknown key list them.
fn key_paths() -> Vec<(String, &'static str)> {
    let mut paths = Vec::new();
    for (header, prefix) in KINDS
        .iter()
        .map(|kind| (format!("{kind}.search-api"), format!("{kind}.search-api")))
        .chain(SINGLES.iter().map(|section| ((*section).to_owned(), (*section).to_owned())))
    {
        match config::parse(&format!("[{header}]\nnot_a_key = 1\n"), "hardened.toml") {
            Err(ConfigError::UnknownKey { allowed, .. }) => {
                assert!(!allowed.is_empty(), "[{header}] has keys");
                paths.extend(allowed.iter().map(|key| (prefix.clone(), *key)));
            }
            other => panic!("[{header}] reports an unknown key, not {other:?}"),
        }
    }
    paths
}

/// Reads `text` as the file through `load_text`, within [`BOUNDED`].
fn load_in_bounded_time(text: &str) -> Result<(), String> {
    let started = Instant::now();
    let result = config::load_text(text, "hardened.toml").map(drop).map_err(|error| error.to_string());
    let took = started.elapsed();
    assert!(took < BOUNDED, "reading {} bytes took {took:?}", text.len());
    result
}

/// A TOML string holding `text`: JSON's escapes are TOML's, but for DEL, which TOML escapes too.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string is JSON").replace('\u{7f}', "\\u007f")
}

/// A TOML float: Rust writes the finite ones as TOML does, the others differently.
fn toml_float(number: f64) -> String {
    match number {
        _ if number.is_nan() => "nan".to_owned(),
        f64::INFINITY => "inf".to_owned(),
        f64::NEG_INFINITY => "-inf".to_owned(),
        _ => format!("{number:?}"),
    }
}

/// A TOML value of any type but a table, written as TOML.
fn toml_value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        any::<i64>().prop_map(|number| number.to_string()),
        any::<f64>().prop_map(toml_float),
        any::<bool>().prop_map(|flag| flag.to_string()),
        any::<String>().prop_map(|text| toml_string(&text)),
        "[0-9]{1,6} ?(ns|us|ms|s|m|min|h|d|w|y|years|/s|/min|/h|/10s)?".prop_map(|text| toml_string(&text)),
        "[a-z+:/@.?=-]{0,40}".prop_map(|text| toml_string(&text)),
    ];
    scalar.prop_recursive(3, 16, 4, |inner| {
        proptest::collection::vec(inner, 0..4).prop_map(|items| format!("[{}]", items.join(", ")))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_read_or_refused_without_a_panic(text in any::<String>()) {
        let _ = load_in_bounded_time(&text);
    }

    #[test]
    fn any_text_under_a_known_section_is_read_or_refused_without_a_panic(
        section in proptest::sample::select(KINDS.iter().map(|kind| format!("{kind}.x")).chain(SINGLES.iter().map(|s| (*s).to_owned())).collect::<Vec<_>>()),
        body in "[a-z_]{1,20} ?= ?[ -~]{0,60}",
    ) {
        let _ = load_in_bounded_time(&format!("[{section}]\n{body}\n"));
    }

    #[test]
    fn any_value_of_any_key_is_read_or_refused_by_its_key(
        (section, key) in proptest::sample::select(key_paths()),
        value in toml_value(),
    ) {
        let text = format!("[{section}]\n{key} = {value}\n");
        if let Err(message) = load_in_bounded_time(&text) {
            let path = format!("{section}.{key}");
            prop_assert!(message.contains(&path), "the error for {text:?} does not name {path}: {message}");
        }
    }

    #[test]
    fn any_value_of_any_variable_is_read_or_refused_by_its_variable(
        (section, key) in proptest::sample::select(key_paths()),
        value in any::<String>(),
    ) {
        let variable = format!(
            "HARDENED_{}__{}",
            section.replace('.', "__").replace('-', "_").to_ascii_uppercase(),
            key.to_ascii_uppercase()
        );
        let started = Instant::now();
        let result = config::with_env(Config::default(), [(variable.clone(), value.clone())]);
        prop_assert!(started.elapsed() < BOUNDED);
        if let Err(error) = result {
            let message = error.to_string();
            prop_assert!(message.contains(&variable), "the error for {variable}={value:?} does not name it: {message}");
        }
    }
}

#[test]
fn deeply_nested_arrays_are_refused_without_overflowing_the_stack() {
    for depth in [64, 1_024, 100_000] {
        let text = format!("[breaker.deep]\nfailure_rate = {}1{}\n", "[".repeat(depth), "]".repeat(depth));
        let message = load_in_bounded_time(&text).expect_err("an array is not a failure rate");
        assert!(message.contains("hardened.toml"), "{message}");
    }
}

#[test]
fn a_long_value_or_key_is_refused_in_bounded_time() {
    let long = "x".repeat(1024 * 1024);
    let message = load_in_bounded_time(&format!("[rate.long]\nredis_url = \"{long}\"\n")).expect_err("not a URL");
    assert!(message.contains("rate.long.redis_url"), "{}", &message[..200.min(message.len())]);
    // An unknown key that long is compared with no allowed key for a suggestion.
    let message = load_in_bounded_time(&format!("[rate.long]\n{long} = 1\n")).expect_err("an unknown key");
    assert!(
        message.contains("unknown key") && !message.contains("did you mean"),
        "{}",
        &message[..200.min(message.len())]
    );
}
