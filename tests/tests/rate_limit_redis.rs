//! Global rate limiters against a real Redis: one bucket shared exactly by tasks and by processes,
//! `retry_after` and refill at the configured rate, `wait`, expiry, the macro's `scope = "global"`, and
//! Redis frozen, killed and restarted in the middle of a run.
//!
//! Needs a server: `REDIS_URL=redis://127.0.0.1:6379 cargo test -p hardened-tests --test rate_limit_redis --
//! --include-ignored`. Without `--include-ignored` these tests are ignored; with it and without `REDIS_URL`
//! they fail. Every key is in a namespace of the run's own ([`service`]); the outage test runs a
//! `redis-server` of its own on a free port and never touches the shared one.

use std::time::{Duration, Instant};

use hardened::clock::Clock;
use hardened::health::HealthStatus;
use hardened::rate_limit::{Demand, RateLimiter, Scope};
use hardened::{Rejected, hardened};
use hardened_tests::redis::{RedisServer, connection, global_config, global_limiter, key, service, unique_name};
use hardened_tests::{redis_url, sample};
use redis::AsyncCommands as _;

const HOUR: Duration = Duration::from_hours(1);

/// The `retry_after` of a refusal by a rate limiter.
fn retry_after_of(result: Result<(), Rejected>) -> Duration {
    match result {
        Err(Rejected::RateLimited { retry_after, .. }) => retry_after,
        other => panic!("expected a refusal by the rate limiter, found {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Redis: set REDIS_URL and run with --include-ignored"]
async fn concurrent_tasks_share_one_bucket_and_admit_exactly_the_burst() {
    // 40 an hour, a burst of 40: one token every 90 s, so none comes back during the test.
    let limiter = global_limiter("tasks", global_config(40, HOUR, 40, Some(redis_url())));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(async move {
                let mut results = Vec::new();
                for _ in 0..10 {
                    results.push(limiter.acquire().await);
                }
                results
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.extend(task.await.expect("the task completes"));
    }
    let admitted = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(admitted, 40, "exactly the burst is admitted, however the 160 calls interleave");
    for refused in results.into_iter().filter(Result::is_err) {
        let retry_after = retry_after_of(refused);
        assert!(retry_after > Duration::from_mins(1) && retry_after <= Duration::from_secs(90), "{retry_after:?}");
    }
    assert_eq!(limiter.refused(), 120);
    assert_eq!((limiter.available(), limiter.backend_errors()), (0, 0));
}

/// Runs three `rate_limit_peer` processes at once on the limiter `name` of this run's service, with `env`
/// added; each one's admitted calls.
async fn run_peers(url: &str, name: &str, env: &[(&str, &str)]) -> Vec<u32> {
    let peers = (0..3).map(|_| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rate_limit_peer"))
            .env("REDIS_URL", url)
            .env("OTEL_SERVICE_NAME", service())
            .env("LIMITER", name)
            .envs(env.iter().copied())
            .output()
    });
    let mut admitted = Vec::new();
    for output in futures::future::join_all(peers).await {
        let output = output.expect("the peer runs");
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "the peer failed: {stderr}");
        admitted.push(
            stdout
                .trim()
                .strip_prefix("admitted ")
                .and_then(|count| count.parse().ok())
                .unwrap_or_else(|| panic!("the peer printed {stdout:?}")),
        );
    }
    admitted
}

#[tokio::test]
#[ignore = "needs Redis: set REDIS_URL and run with --include-ignored"]
async fn three_processes_share_one_bucket_and_admit_exactly_the_burst() {
    let url = redis_url();
    let name = unique_name("processes");
    let admitted = run_peers(&url, name, &[("BURST", "30"), ("ATTEMPTS", "25")]).await;
    assert!(admitted.iter().all(|count| *count <= 25));
    let admitted: u32 = admitted.iter().sum();
    assert_eq!(admitted, 30, "75 calls from three processes, a burst of 30");

    let here = RateLimiter::new(name, global_config(30, HOUR, 30, Some(url)), Clock::system());
    assert!(here.acquire().await.is_err(), "a fourth replica finds the bucket empty too");
}

#[tokio::test]
#[ignore = "needs Redis: set REDIS_URL and run with --include-ignored"]
async fn three_processes_share_one_tenants_token_budget_and_admit_exactly_its_tokens() {
    let url = redis_url();
    let name = unique_name("tenant-budget");
    // 300 tokens an hour for each tenant; each call takes 7: 42 calls fit (294 tokens), not 43.
    let env = [("BURST", "300"), ("ATTEMPTS", "25"), ("TENANT", "acme"), ("COST", "7")];
    let admitted: u32 = run_peers(&url, name, &env).await.iter().sum();
    assert_eq!(admitted, 42, "75 calls of 7 tokens from three processes, a budget of 300");

    let here = RateLimiter::new(name, global_config(300, HOUR, 300, Some(url.clone())), Clock::system());
    let left = here.take(Demand::keyed(&"acme", 7_u32)).await.expect_err("a fourth replica finds acme's budget spent");
    assert!(matches!(left, Rejected::RateLimited { .. }), "{left:?}");
    assert!(here.take(Demand::keyed(&"acme", 6_u32)).await.is_ok(), "6 tokens were left");
    assert!(here.take(Demand::keyed(&"globex", 300_u32)).await.is_ok(), "another tenant has its own budget");
    assert_eq!(
        here.take(Demand::keyed(&"globex", 301_u32)).await,
        Err(Rejected::CostOverBurst { name, cost: 301, burst: 300 })
    );

    // Each tenant's bucket is a key of its own, tagged for Redis Cluster, expiring when it is full again.
    let mut connection = connection(&url).await;
    let keys: Vec<String> = connection.keys(format!("{}:{{*}}", key(name))).await.expect("KEYS");
    assert_eq!(keys.len(), 2, "{keys:?}");
    for tenant_key in &keys {
        let tag = tenant_key.rsplit_once(":{").map(|(_, tag)| tag).expect("a hash tag");
        assert!(tag.len() == 33 && tag.ends_with('}'), "{tenant_key}");
        let ttl: i64 = connection.pttl(tenant_key).await.expect("PTTL");
        assert!(ttl > 0 && u128::try_from(ttl).expect("positive") <= HOUR.as_millis(), "{tenant_key}: {ttl} ms");
    }
}

#[tokio::test]
#[ignore = "needs Redis: set REDIS_URL and run with --include-ignored"]
async fn a_global_token_budget_is_settled_in_redis_with_what_the_call_used() {
    let limiter = global_limiter("settled", global_config(300, HOUR, 300, Some(redis_url())));
    let ticket = limiter.take(Demand::keyed(&"acme", 100_u32)).await.expect("a full budget");
    // 100 estimated, 10 used: 90 come back.
    limiter.settle(ticket, 10).await;
    let ticket = limiter.take(Demand::keyed(&"acme", 290_u32)).await.expect("290 tokens are left");
    assert!(limiter.take(Demand::keyed(&"acme", 1_u32)).await.is_err(), "and no more");
    // 290 estimated, 300 used: 10 more are charged, so acme is 10 in debt.
    limiter.settle(ticket, 300).await;
    let refused = limiter.take(Demand::keyed(&"acme", 1_u32)).await.expect_err("in debt");
    let retry_after = refused.retry_after().expect("a rate limit");
    // 11 tokens at 12 s each.
    assert!(retry_after > Duration::from_secs(131) && retry_after <= Duration::from_secs(132), "{retry_after:?}");
    assert_eq!(limiter.backend_errors(), 0);
    let top = limiter.top_refused(1);
    assert_eq!((top[0].key.as_str(), top[0].refused), ("\"acme\"", 2));
}

#[tokio::test]
#[ignore = "needs Redis: set REDIS_URL and run with --include-ignored"]
async fn retry_after_is_the_time_to_the_next_token_and_the_key_expires_when_the_bucket_is_full() {
    let url = redis_url();
    // One an hour, a burst of 2.
    let limiter = global_limiter("retry-after", global_config(1, HOUR, 2, Some(url.clone())));
    assert!(limiter.acquire().await.is_ok());
    assert!(limiter.acquire().await.is_ok());
    let retry_after = retry_after_of(limiter.acquire().await);
    assert!(retry_after <= HOUR && retry_after > Duration::from_mins(59), "{retry_after:?}");

    // Two tokens taken: the bucket is full again two intervals after the first call, and so is the key gone.
    let ttl: u64 = connection(&url).await.pttl(key(limiter.name())).await.expect("PTTL");
    let (full_again, slack) = (2 * HOUR.as_millis(), Duration::from_mins(1).as_millis());
    assert!(u128::from(ttl) <= full_again && u128::from(ttl) > full_again - slack, "{ttl} ms");
}

#[tokio::test]
#[ignore = "needs Redis: set REDIS_URL and run with --include-ignored"]
async fn the_bucket_refills_at_the_rate_and_a_call_within_wait_waits_for_its_slot() {
    let url = redis_url();
    // 10 a second, a burst of 1: one token every 100 ms.
    let mut config = global_config(10, Duration::from_secs(1), 1, Some(url.clone()));
    let limiter = global_limiter("refill", config.clone());
    assert!(limiter.acquire().await.is_ok());
    let retry_after = retry_after_of(limiter.acquire().await);
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_millis(100), "{retry_after:?}");
    tokio::time::sleep(retry_after).await;
    assert!(limiter.acquire().await.is_ok(), "a token is back after retry_after");

    // A wait of 150 ms: the next slot (100 ms away) is reserved and slept for, the one after is refused.
    config.wait = Some(Duration::from_millis(150));
    let waiting = global_limiter("wait", config);
    assert!(waiting.acquire().await.is_ok());
    let started = Instant::now();
    let (first, second) = tokio::join!(waiting.acquire(), waiting.acquire());
    let (admitted, refused) = if first.is_ok() { (first, second) } else { (second, first) };
    assert!(admitted.is_ok(), "one call waits for the next slot");
    assert!(started.elapsed() >= Duration::from_millis(50), "it waited for its slot: {:?}", started.elapsed());
    let retry_after = retry_after_of(refused);
    assert!(retry_after > Duration::from_millis(150), "the slot after is further than the wait: {retry_after:?}");

    // Idle, the bucket is full again within 200 ms, and its key is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut connection = connection(&url).await;
    for name in [limiter.name(), waiting.name()] {
        let exists: bool = connection.exists(key(name)).await.expect("EXISTS");
        assert!(!exists, "the key of an idle limiter expires");
    }
}

#[derive(Debug, thiserror::Error)]
enum ProviderError {
    #[error(transparent)]
    Refused(#[from] Rejected),
}

#[hardened(kind = "llm", rate(name = "macro_global", per_second = "3/h", scope = "global"))]
async fn call_provider() -> Result<(), ProviderError> {
    Ok(())
}

#[tokio::test]
#[ignore = "needs Redis: set REDIS_URL and run with --include-ignored"]
async fn the_macro_makes_a_global_limiter_from_redis_url() {
    let url = redis_url();
    service();
    let mut admitted = 0;
    for _ in 0..5 {
        admitted += u32::from(call_provider().await.is_ok());
    }
    assert_eq!(admitted, 3);
    let limiter = hardened::rate_limiter("macro_global");
    assert_eq!((limiter.scope(), limiter.backend_available()), (Scope::Global, Some(true)));
    let ttl: i64 = connection(&url).await.pttl(key("macro_global")).await.expect("PTTL");
    assert!(ttl > 0, "the bucket is in Redis, with an expiry");
}

/// The status of the health check of the limiter `name`, once it is `wanted` (the registry caches a
/// result for a second), or the last one seen after a few seconds.
async fn health_becomes(name: &str, wanted: HealthStatus) -> (HealthStatus, Option<String>) {
    let component = format!("rate_limiter.{name}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let report = hardened::health::registry().report().await;
        let health = report.component(&component).unwrap_or_else(|| panic!("no health check {component}"));
        if health.status == wanted || Instant::now() > deadline {
            return (health.status, health.message.clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls `limiter` until Redis answers it again, which its backoff allows within 2 s of Redis's return.
async fn until_redis_answers(limiter: &RateLimiter) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while limiter.backend_available() != Some(true) {
        assert!(Instant::now() < deadline, "{} does not ask Redis again", limiter.name());
        let _ = limiter.acquire().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A call that must end within a second, whatever Redis does.
async fn bounded(limiter: &RateLimiter) -> Result<(), Rejected> {
    tokio::time::timeout(Duration::from_secs(1), limiter.acquire()).await.expect("a call never hangs on Redis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis: set REDIS_URL and run with --include-ignored"]
async fn redis_frozen_or_down_never_hangs_calls_and_the_shared_limit_holds_again_when_it_is_back() {
    service();
    let mut server = RedisServer::start();
    let url = server.url();
    let (sharing, refusing) = (unique_name("outage-share"), unique_name("outage-reject"));
    // 4 an hour for two replicas: while Redis is unavailable, each admits its share, 2.
    let file = format!(
        "[rate.\"{sharing}\"]\nper_second = \"4/h\"\nscope = \"global\"\nredis_url = \"{url}\"\n\
         redis_timeout = \"100ms\"\nreplicas = 2\n\n\
         [rate.\"{refusing}\"]\nper_second = \"4/h\"\nscope = \"global\"\nredis_url = \"{url}\"\n\
         redis_timeout = \"100ms\"\non_unavailable = \"reject\"\n"
    );
    hardened::config::install(hardened::config::parse(&file, "hardened.toml").expect("a valid configuration"));
    let (sharing, refusing) = (hardened::rate_limiter(sharing), hardened::rate_limiter(refusing));
    let errors = |limiter: &RateLimiter| {
        sample("hardened_rate_limiter_backend_errors_total", &[("name", limiter.name())]).expect("a series")
    };

    // Redis answers.
    assert!(bounded(sharing).await.is_ok() && bounded(refusing).await.is_ok());
    assert_eq!((sharing.backend_available(), errors(sharing)), (Some(true), 0));
    assert_eq!(health_becomes(sharing.name(), HealthStatus::Healthy).await.0, HealthStatus::Healthy);

    // Frozen: nothing answers; each call gives up after redis_timeout and the policy decides.
    server.freeze();
    let started = Instant::now();
    let mut admitted_by_share = u32::from(bounded(sharing).await.is_ok());
    let refused = retry_after_of(bounded(refusing).await);
    assert!(refused >= Duration::from_millis(100), "retry after the next attempt to reach Redis: {refused:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "two calls took {:?}", started.elapsed());
    assert_eq!((sharing.backend_available(), refusing.backend_available()), (Some(false), Some(false)));
    let (status, message) = health_becomes(sharing.name(), HealthStatus::Degraded).await;
    assert_eq!(status, HealthStatus::Degraded);
    let message = message.unwrap_or_default();
    assert!(message.contains("no answer within 100ms") && message.contains("share"), "{message}");
    server.thaw();

    // Down: refused connections; the share admits 2 in all, the other policy refuses everything.
    server.kill();
    for _ in 0..6 {
        admitted_by_share += u32::from(bounded(sharing).await.is_ok());
        assert!(bounded(refusing).await.is_err());
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(admitted_by_share, 2, "this replica's share of 4 over 2 replicas");
    assert!(errors(sharing) >= 2 && errors(refusing) >= 2, "{} {}", errors(sharing), errors(refusing));
    assert!(errors(sharing) < 20, "backing off, not asking Redis on every call: {}", errors(sharing));
    let (status, message) = health_becomes(refusing.name(), HealthStatus::Degraded).await;
    assert_eq!(status, HealthStatus::Degraded);
    assert!(message.unwrap_or_default().contains("calls are refused"));

    // Back (empty: it kept nothing): Redis decides again, with the whole quota rather than the share.
    server.restart();
    until_redis_answers(sharing).await;
    until_redis_answers(refusing).await;
    let _: () = connection(&url).await.del(key(sharing.name())).await.expect("DEL");
    let mut admitted = 0;
    for _ in 0..10 {
        admitted += u32::from(bounded(sharing).await.is_ok());
    }
    assert_eq!(admitted, 4, "the shared bucket's burst");
    assert!(bounded(refusing).await.is_ok());
    assert_eq!(health_becomes(sharing.name(), HealthStatus::Healthy).await.0, HealthStatus::Healthy);
}
