//! The configuration reads the guard keys as the schema describes them: exactly the keys it lists for the
//! configuration, with its ranges and messages, and the built-in defaults it documents.

use std::fmt::Write as _;

use hardened::breaker::BreakerConfig;
use hardened::bulkhead::BulkheadConfig;
use hardened::concurrency::ConcurrencyConfig;
use hardened::config::{
    self, BreakerSettings, BulkheadSettings, ConcurrencySettings, Config, HedgeSettings, MetricsSettings, RateSettings,
    RetrySettings,
};
use hardened::hedge::HedgeConfig;
use hardened::rate_limit::{RateConfig, Scope};
use hardened::retry::RetryConfig;
use hardened_schema::{KINDS, Spec, Value};

fn section(kind: &str, key: &str, value: &str) -> Result<Config, config::ConfigError> {
    config::parse(&format!("[{kind}.some_guard]\n{key} = {value}\n"), "hardened.toml")
}

#[test]
fn the_configuration_accepts_exactly_the_keys_the_schema_gives_it() {
    let mut checked = 0;
    for kind in KINDS {
        for spec in kind.keys {
            if spec.accepted.in_config() {
                let read = section(kind.name, spec.name, spec.example);
                assert!(read.is_ok(), "{}.{} = {}: {:?}", kind.name, spec.name, spec.example, read.err());
            } else {
                // Any TOML value: the key is refused before its value is read.
                let error = section(kind.name, spec.name, "true").expect_err("not a configuration key").to_string();
                assert!(error.contains(&format!("unknown key {}.some_guard.{}", kind.name, spec.name)), "{error}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "every kind's keys are walked");
}

#[test]
fn a_whole_number_out_of_the_schemas_range_is_refused_in_the_schemas_words() {
    for kind in KINDS {
        for spec in kind.keys.iter().filter(|spec| spec.accepted.in_config()) {
            let (Value::Whole { min, max } | Value::WholeOrOneOf { min, max, .. }) = spec.value else { continue };
            for outside in [min - 1, max + 1] {
                let error = section(kind.name, spec.name, &outside.to_string()).expect_err("out of range").to_string();
                let expected = format!(
                    "{}.some_guard.{} = {outside} is out of range; allowed: {}",
                    kind.name, spec.name, spec.value
                );
                assert!(error.contains(&expected), "{error}\nwanted: {expected}");
            }
            assert!(section(kind.name, spec.name, &max.to_string()).is_ok(), "{}.{} = {max}", kind.name, spec.name);
        }
    }
}

/// `key = default` as the configuration writes the value.
fn written(spec: &Spec, default: &str) -> String {
    match spec.value {
        Value::Duration | Value::OneOf(_) | Value::RedisUrl | Value::Latency => {
            format!("{} = \"{default}\"", spec.name)
        }
        _ => format!("{} = {default}", spec.name),
    }
}

#[test]
fn the_built_in_defaults_are_the_schemas() {
    let mut defaults = Config::default();
    let mut global = RateConfig::default();
    global.scope = Scope::Global;
    defaults.breaker.insert("breaker".into(), BreakerSettings::of(&BreakerConfig::default()));
    defaults.rate.insert("local".into(), RateSettings::of(&RateConfig::default()));
    defaults.rate.insert("global".into(), RateSettings::of(&global));
    defaults.concurrency.insert("concurrency".into(), ConcurrencySettings::of(&ConcurrencyConfig::default()));
    defaults.bulkhead.insert("bulkhead".into(), BulkheadSettings::of(&BulkheadConfig::default()));
    defaults.retry.insert("retry".into(), RetrySettings::of(&RetryConfig::default()));
    defaults.hedge.insert("hedge".into(), HedgeSettings::of(&HedgeConfig::default()));
    defaults.metrics.insert("metrics".into(), MetricsSettings::built_in());
    let rendered = config::render(&defaults);
    let lines: Vec<&str> = rendered.lines().map(str::trim).collect();
    let mut checked = 0;
    for kind in KINDS {
        for spec in kind.keys {
            if let Some(default) = spec.default {
                assert!(lines.contains(&written(spec, default).as_str()), "{}.{}:\n{rendered}", kind.name, spec.name);
                checked += 1;
            } else {
                // Unset means something of its own: never rendered from a default.
                let section = format!("[{}.", kind.name);
                let of_kind = rendered.split("\n\n").filter(|part| part.trim_start().starts_with(&section));
                let prefix = format!("{} = ", spec.name);
                assert!(
                    of_kind.flat_map(str::lines).all(|line| !line.trim().starts_with(&prefix)),
                    "{}.{} has no default, yet one is rendered:\n{rendered}",
                    kind.name,
                    spec.name
                );
            }
        }
    }
    assert!(checked >= 20);
}

/// The key table of `kind` in the configuration guide, as the schema gives it.
fn key_table(kind: &hardened_schema::Kind) -> String {
    let mut table = String::from("| key | allowed | default | what it does |\n| --- | --- | --- | --- |\n");
    for spec in kind.keys.iter().filter(|spec| spec.accepted.in_config()) {
        let default = match spec.default {
            Some(default) => {
                format!("`{}`", written(spec, default).split_once(" = ").map_or(default, |(_, value)| value))
            }
            None => "unset".to_owned(),
        };
        let _ = writeln!(table, "| `{}` | {} | {default} | {} |", spec.name, spec.value, spec.doc);
    }
    table
}

#[test]
fn the_configuration_guides_key_tables_are_the_schemas() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let guide = std::fs::read_to_string(&path).expect("docs/configuration.md");
    let mut written = String::with_capacity(guide.len());
    let mut rest = guide.as_str();
    let mut found = 0;
    while let Some(start) = rest.find("<!-- keys: ") {
        let (before, marker) = rest.split_at(start);
        let header_end = marker.find("-->\n").expect("a closed marker") + 4;
        let kind_name = marker["<!-- keys: ".len()..].split_whitespace().next().expect("a kind");
        let kind = KINDS.iter().find(|kind| kind.name == kind_name).expect("a kind of the schema");
        let end = marker.find("<!-- /keys -->").expect("an end marker");
        written.push_str(before);
        written.push_str(&marker[..header_end]);
        written.push_str(&key_table(kind));
        rest = &marker[end..];
        found += 1;
    }
    written.push_str(rest);
    assert_eq!(found, KINDS.len(), "one generated table per kind");
    if std::env::var_os("HARDENED_BLESS_DOCS").is_some() {
        std::fs::write(&path, &written).expect("docs/configuration.md is writable");
    }
    assert!(
        written == guide,
        "docs/configuration.md's key tables differ from the schema; run \
         `HARDENED_BLESS_DOCS=1 cargo test -p hardened-tests --test schema` and review the diff"
    );
}
