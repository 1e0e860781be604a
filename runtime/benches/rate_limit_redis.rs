//! Global rate limiters: what a decision in Redis adds to a call, and how many decisions per second one
//! process gets through one limiter.
//!
//! - `rate_limit_redis/local`: `acquire` on a local limiter, the baseline.
//! - `rate_limit_redis/global`: `acquire` on a global limiter, one decision at a time: a round trip to
//!   Redis running the GCRA script. Its time less `local` is the latency a global limiter adds.
//! - `rate_limit_redis/global_concurrent`: 64 decisions at once from a multi-threaded runtime, pipelined
//!   over the limiter's one multiplexed connection; the throughput is in decisions per second.
//!
//! None of them is refused: the limiters admit far more than the benchmark asks. Without `REDIS_URL` the
//! benchmark says so and measures nothing.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo bench -p hardened --features redis --bench rate_limit_redis
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hardened::clock::Clock;
use hardened::rate_limit::{RateConfig, RateLimiter, Scope};

/// Decisions in flight at once in the concurrent case.
const CONCURRENT: usize = 64;

/// A limiter that never refuses here: as many calls per second as a `u32` holds, a burst of a million.
fn limiter(name: &'static str, scope: Scope, redis_url: &str) -> &'static RateLimiter {
    let mut config = RateConfig::per_second(u32::MAX);
    config.burst = 1_000_000;
    config.scope = scope;
    config.redis_url = Some(redis_url.to_owned());
    // Measure Redis, not the policy: a busy machine must not turn a slow answer into a local decision.
    config.redis_timeout = Duration::from_secs(1);
    Box::leak(Box::new(RateLimiter::new(name, config, Clock::system())))
}

fn decisions(c: &mut Criterion, redis_url: &str) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let local = limiter("bench_local", Scope::Local, redis_url);
    let global = limiter("bench_global", Scope::Global, redis_url);
    runtime.block_on(global.acquire()).expect("Redis admits the first call");

    // Each sample runs its iterations inside one `block_on`, so that entering the runtime is not measured.
    let runtime = &runtime;
    let one_at_a_time = |limiter: &'static RateLimiter| {
        move |iterations: u64| -> Duration {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    black_box(limiter.acquire().await).expect("admitted");
                }
                started.elapsed()
            })
        }
    };
    let mut group = c.benchmark_group("rate_limit_redis");
    group.bench_function("local", |b| b.iter_custom(one_at_a_time(local)));
    group.bench_function("global", |b| b.iter_custom(one_at_a_time(global)));
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function("global_concurrent", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    let calls: Vec<_> = (0..CONCURRENT).map(|_| tokio::spawn(global.acquire())).collect();
                    for call in calls {
                        black_box(call.await.expect("the decision completes")).expect("admitted");
                    }
                }
                started.elapsed()
            })
        });
    });
    group.finish();
    assert_eq!(global.backend_errors(), 0, "Redis answered every decision");
}

fn main() {
    let Some(redis_url) = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!(
            "rate_limit_redis: REDIS_URL is not set, so there is no Redis to measure; skipped \
             (REDIS_URL=redis://127.0.0.1:6379 cargo bench -p hardened --features redis --bench rate_limit_redis)"
        );
        return;
    };
    // Keys of this run's own: `hardened:rate:<service>:<limiter>`.
    hardened::audit::set_service_name(format!("hardened-bench-{}", std::process::id()));
    let mut criterion = Criterion::default().configure_from_args();
    decisions(&mut criterion, &redis_url);
    criterion.final_summary();
}
