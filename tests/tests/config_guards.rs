//! Configuration layered over the guards: precedence, retuning running guards, the effective
//! configuration and names that match no guard.
//!
//! The configuration is process-wide, so this file is one test that runs its steps in order.

use std::sync::Arc;
use std::time::Duration;

use hardened::config::{self, Config};
use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum AppError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
}

#[hardened(breaker(name = "layered", failure_rate = 30, min_calls = 4, open_for = "5s"))]
fn layered() -> Result<(), AppError> {
    Ok(())
}

#[hardened(bulkhead(name = "pool", max = 1))]
async fn pooled(hold: Arc<tokio::sync::Notify>) -> Result<(), AppError> {
    hold.notified().await;
    Ok(())
}

fn configuration(file: &str, env: &[(&str, &str)]) -> Config {
    let parsed = config::parse(file, "hardened.toml").expect("a valid file");
    let vars = env.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned()));
    config::with_env(parsed, vars).expect("valid overrides")
}

#[tokio::test]
async fn configuration_layers_over_literals_and_retunes_running_guards() {
    // Before any guard exists: the default section, the literal, the named section, then the environment.
    config::install(configuration(
        r#"
        [breaker.default]
        failure_rate = 70
        slow_rate = 90
        open_for = "1m"

        [breaker.layered]
        min_calls = 8

        [breaker.layerd]
        min_calls = 1
        "#,
        &[("HARDENED_BREAKER__LAYERED__OPEN_FOR", "2m")],
    ));
    layered().expect("closed");
    let settings = hardened::breaker("layered").config();
    assert_eq!(settings.slow_rate, 90, "from [breaker.default]");
    assert_eq!(settings.failure_rate, 30, "the function's literal beats [breaker.default]");
    assert_eq!(settings.min_calls, 8, "[breaker.layered] beats the literal");
    assert_eq!(settings.open_for, Duration::from_mins(2), "the environment beats the file");
    assert_eq!(settings.half_open_calls, 3, "the built-in default where nobody says otherwise");

    let unused = config::unused();
    assert_eq!(unused.len(), 1, "{unused:?}");
    assert_eq!(
        unused[0].to_string(),
        "[breaker.layerd] names no breaker used by any function; did you mean `layered`?"
    );

    // A call holds the pool's only permit while the configuration grows the pool.
    let hold = Arc::new(tokio::sync::Notify::new());
    let holder = tokio::spawn(pooled(hold.clone()));
    let pool = hardened::bulkhead("pool");
    for _ in 0..10_000 {
        if pool.available() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.available(), 0, "the holder took the pool's only permit");
    assert_eq!(pooled(hold.clone()).await, Err(AppError::Refused(Rejected::BulkheadFull { name: "pool" })));
    config::install(configuration("[bulkhead.pool]\nmax = 3\n\n[breaker.layered]\nmin_calls = 2\n", &[]));
    assert_eq!(pool.config().max, 3);
    assert_eq!(pool.available(), 2, "the permit in flight is kept");
    assert_eq!(hardened::breaker("layered").config().min_calls, 2, "running breakers are retuned");
    assert_eq!(hardened::breaker("layered").config().failure_rate, 30, "the literal still applies");
    hold.notify_one();
    holder.await.expect("task finished").expect("the held call completes");
    assert_eq!(pool.available(), 3);

    let effective = config::effective();
    assert!(effective.contains("[breaker.layered]"), "{effective}");
    assert!(effective.contains("failure_rate = 30"), "{effective}");
    assert!(effective.contains("min_calls = 2"), "{effective}");
    assert!(effective.contains("[bulkhead.pool]"), "{effective}");
    assert!(effective.contains("max = 3"), "{effective}");
    let reparsed = config::parse(&effective, "effective").expect("the effective configuration parses back");
    assert_eq!(reparsed.bulkhead["pool"].max, Some(3));
}
