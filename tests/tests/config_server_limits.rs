//! The `[server]` keys of the server's limits and of trace trust: read from the file and the environment,
//! applied to `ServerLimits`, rendered back, and refused with the key and what is allowed.

use std::time::Duration;

use hardened::config::{self, Config, ServerSettings};
use hardened::http::ServerLimits;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

fn parse_error(toml: &str) -> String {
    config::parse(toml, "hardened.toml").expect_err("the file is invalid").to_string()
}

#[test]
fn the_limits_are_read_from_the_file_and_the_environment_and_applied() {
    let file = r#"
        [server]
        header_read_timeout = "5s"
        request_timeout = "2m"
        max_connections = 256
        body_limit = "256 KiB"
        trust_incoming_trace = false
    "#;
    let config = config::parse(file, "hardened.toml").expect("the file is valid");
    assert_eq!(
        config.server,
        ServerSettings {
            header_read_timeout: Some(Duration::from_secs(5)),
            request_timeout: Some(Duration::from_mins(2)),
            max_connections: Some(256),
            body_limit: Some(256 * 1024),
            trust_incoming_trace: Some(false),
            ..ServerSettings::default()
        }
    );

    let config = config::with_env(
        config,
        vars(&[("HARDENED_SERVER__BODY_LIMIT", "2MiB"), ("HARDENED_SERVER__TRUST_INCOMING_TRACE", "true")]),
    )
    .expect("the overrides are valid");
    let mut limits = ServerLimits::default();
    config.server.apply_to(&mut limits);
    assert_eq!(
        limits,
        ServerLimits {
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_mins(2),
            max_connections: 256,
            body_limit: 2 * 1024 * 1024,
        }
    );
    assert_eq!(config.server.trust_incoming_trace, Some(true), "the environment wins");
}

#[test]
fn unset_keys_keep_the_safe_defaults() {
    let mut limits = ServerLimits::default();
    config::parse("[server]\naddress = \"127.0.0.1:8080\"\n", "hardened.toml")
        .expect("the file is valid")
        .server
        .apply_to(&mut limits);
    assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(limits.request_timeout, Duration::from_secs(30));
    assert_eq!(limits.max_connections, 1024);
    assert_eq!(limits.body_limit, 1024 * 1024);
}

#[test]
fn a_body_limit_is_bytes_or_a_binary_unit() {
    for (written, bytes) in [("1", 1), ("65536", 65_536), ("\"64 B\"", 64), ("\"1KiB\"", 1024), ("\"3 GiB\"", 3 << 30)]
    {
        let config = config::parse(&format!("[server]\nbody_limit = {written}\n"), "hardened.toml").expect(written);
        assert_eq!(config.server.body_limit, Some(bytes), "{written}");
    }
}

#[test]
fn invalid_limits_name_the_key_the_value_and_what_is_allowed() {
    assert_eq!(
        parse_error("[server]\nbody_limit = \"1 MB\"\n"),
        r#"hardened.toml: server.body_limit = "1 MB" is not a size; allowed: a number of bytes above zero: 1048576, or a string such as "1 MiB", "512 KiB" or "64 B""#
    );
    assert_eq!(
        parse_error("[server]\nbody_limit = 0\n"),
        r#"hardened.toml: server.body_limit = 0 is out of range; allowed: a number of bytes above zero: 1048576, or a string such as "1 MiB", "512 KiB" or "64 B""#
    );
    assert_eq!(
        parse_error("[server]\nmax_connections = 0\n"),
        "hardened.toml: server.max_connections = 0 is out of range; allowed: a whole number from 1 to 16777216"
    );
    assert_eq!(
        parse_error("[server]\nheader_read_timeout = \"0s\"\n"),
        r#"hardened.toml: server.header_read_timeout = "0s" is out of range; allowed: a duration longer than zero, such as "30s", "250ms" or "1m 30s""#
    );
    assert_eq!(
        parse_error("[server]\ntrust_incoming_trace = \"no\"\n"),
        r#"hardened.toml: server.trust_incoming_trace = "no" is not true or false; allowed: true or false"#
    );
    let error = config::with_env(Config::default(), vars(&[("HARDENED_SERVER__REQUEST_TIMEOUT", "forever")]))
        .expect_err("the environment is invalid")
        .to_string();
    assert_eq!(
        error,
        r#"HARDENED_SERVER__REQUEST_TIMEOUT=forever (server.request_timeout) is not a duration; allowed: a duration longer than zero, such as "30s", "250ms" or "1m 30s""#
    );
}

#[test]
fn the_limits_render_then_parse_back() {
    let server = ServerSettings {
        header_read_timeout: Some(Duration::from_millis(2500)),
        request_timeout: Some(Duration::from_secs(90)),
        max_connections: Some(64),
        body_limit: Some(5 * 1024 * 1024),
        trust_incoming_trace: Some(false),
        ..ServerSettings::default()
    };
    let config = Config { server, ..Config::default() };
    let text = config::render(&config);
    assert_eq!(config::parse(&text, "rendered.toml").expect(&text), config, "{text}");
}
