//! The allowed path of a keyed rate limiter, next to a bare call: on one thread, and on two threads that
//! take from different keys (each thread's calls per second, so contention shows as a longer call).
//!
//! `cargo bench -p hardened --bench keyed_rate`. The limiter never refuses (a rate it cannot reach), and
//! each thread cycles through 1,000 keys of its own, so every call finds its bucket in a table of 2,000.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hardened::clock::Clock;
use hardened::rate_limit::{Demand, RateConfig, RateLimiter};
use hardened::{Rejected, hardened};

/// Keys each thread cycles through.
const KEYS: u64 = 1_000;

#[derive(Debug)]
struct WorkError;

impl From<Rejected> for WorkError {
    fn from(_: Rejected) -> WorkError {
        WorkError
    }
}

#[inline]
fn work(n: u64) -> Result<u64, WorkError> {
    let n = black_box(n);
    if n == u64::MAX { Err(WorkError) } else { Ok(n.wrapping_mul(31).wrapping_add(7)) }
}

#[inline(never)]
fn bare(user: u64) -> Result<u64, WorkError> {
    work(user)
}

/// The limiter's own cost: a bucket by key, taken and kept.
#[inline(never)]
fn keyed(limiter: &RateLimiter, user: u64) -> Result<u64, WorkError> {
    let _ticket = limiter.try_take(Demand::keyed(&user, 1_u32))?;
    work(user)
}

/// The same through the attribute, with its span and metrics (for comparison).
#[inline(never)]
#[hardened(rate(name = "bench_keyed", per_second = 4_000_000_000, key = user, max_keys = 100_000))]
fn keyed_function(user: u64) -> Result<u64, WorkError> {
    work(user)
}

/// A limiter that never refuses in a benchmark.
fn unreachable_rate() -> RateLimiter {
    let mut config = RateConfig::per_second(u32::MAX);
    config.burst = u32::MAX;
    config.max_keys = 100_000;
    RateLimiter::new("bench", config, Clock::system())
}

fn one_thread(criterion: &mut Criterion) {
    let limiter = unreachable_rate();
    let mut group = criterion.benchmark_group("keyed_rate/one_thread");
    let mut user = 0;
    group.bench_function("bare", |bencher| {
        bencher.iter(|| {
            user = (user + 1) % KEYS;
            bare(user)
        });
    });
    group.bench_function("keyed_limiter", |bencher| {
        bencher.iter(|| {
            user = (user + 1) % KEYS;
            keyed(&limiter, user)
        });
    });
    group.bench_function("keyed_function", |bencher| {
        bencher.iter(|| {
            user = (user + 1) % KEYS;
            keyed_function(user)
        });
    });
    group.finish();
}

/// `iterations` calls of `call` on each of two threads, on keys of their own; the time of the slower.
fn on_two_threads(iterations: u64, call: &(dyn Fn(u64) -> Result<u64, WorkError> + Sync)) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2_u64)
            .map(|thread| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let started = Instant::now();
                    for iteration in 0..iterations {
                        let _ = black_box(call(thread * KEYS + iteration % KEYS));
                    }
                    started.elapsed()
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().expect("the thread runs")).max().unwrap_or_default()
    })
}

fn two_threads(criterion: &mut Criterion) {
    let limiter = unreachable_rate();
    let mut group = criterion.benchmark_group("keyed_rate/two_threads");
    group.bench_function("bare", |bencher| bencher.iter_custom(|iterations| on_two_threads(iterations, &bare)));
    group.bench_function("keyed_limiter", |bencher| {
        bencher.iter_custom(|iterations| on_two_threads(iterations, &|user| keyed(&limiter, user)));
    });
    group.bench_function("keyed_function", |bencher| {
        bencher.iter_custom(|iterations| on_two_threads(iterations, &keyed_function));
    });
    group.finish();
}

criterion_group!(benches, one_thread, two_threads);
criterion_main!(benches);
