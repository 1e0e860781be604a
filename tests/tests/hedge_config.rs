//! `[hedge.<name>]` sections: layered over the attribute's literal, read from the environment, retuning a
//! running policy, rendered back, and refused in the schema's words when a value is wrong.
//!
//! The configuration is process-wide, so this file is one test that runs its steps in order.

use std::time::Duration;

use hardened::config::{self, Config};
use hardened::hedge::After;
use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum AppError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
}

#[hardened(hedge(name = "quotes", after = "200ms"))]
async fn quote(symbol: &str) -> Result<usize, AppError> {
    Ok(symbol.len())
}

fn configuration(file: &str, env: &[(&str, &str)]) -> Config {
    let parsed = config::parse(file, "hardened.toml").expect("a valid file");
    let vars = env.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned()));
    config::with_env(parsed, vars).expect("valid overrides")
}

#[tokio::test]
async fn hedge_sections_layer_retune_and_render() {
    config::install(configuration("[hedge.quotes]\nmax = 2\n", &[("HARDENED_HEDGE__QUOTES__BUDGET_RESERVE", "3")]));
    assert_eq!(quote("ACME").await, Ok(4));
    let policy = hardened::hedge_policy("quotes");
    let settings = policy.config();
    assert_eq!(settings.after, After::Fixed(Duration::from_millis(200)), "the literal");
    assert_eq!((settings.max, settings.budget_reserve), (2, 3), "the section, then the environment");
    assert_eq!(policy.delay(), Some(Duration::from_millis(200)));

    // A reload to a percentile: no hedge until the policy has seen enough latencies.
    config::install(configuration("[hedge.quotes]\nafter = \"p99.9\"\n", &[]));
    assert_eq!(policy.config().after, After::Percentile(999));
    assert_eq!(policy.delay(), None, "p99.9 waits for 10,000 samples");
    let effective = config::effective();
    assert!(effective.contains("[hedge.quotes]\nafter = \"p99.9\"\nmax = 1\n"), "{effective}");

    for (value, allowed) in
        [("\"p40\"", "is out of range"), ("\"soon\"", "is not a duration"), ("3", "is not a string")]
    {
        let error = config::parse(&format!("[hedge.quotes]\nafter = {value}\n"), "hardened.toml")
            .expect_err("a wrong `after`")
            .to_string();
        assert!(error.contains(allowed), "{error}");
        assert!(error.contains("a percentile of the observed latency from \"p50\" to \"p99.9\""), "{error}");
    }
    let error = config::parse("[hedge.quotes]\nmax = 4\n", "hardened.toml").expect_err("max out of range").to_string();
    assert!(error.contains("hedge.quotes.max = 4 is out of range; allowed: a whole number from 1 to 3"), "{error}");
}
