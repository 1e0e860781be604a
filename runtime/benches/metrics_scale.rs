//! `/metrics` at scale: 1,000 `#[hardened]` functions, each called from 64 threads, then the exposition
//! rendered as a scrape renders it, in the Prometheus text format and in `OpenMetrics`.
//!
//! ```sh
//! cargo bench -p hardened --bench metrics_scale
//! # the knobs, from the configuration's environment (any [metrics.<name>] section works the same):
//! HARDENED_METRICS__DEFAULT__BUCKETS=0.005,0.05,0.5,5 cargo bench -p hardened --bench metrics_scale
//! HARDENED_METRICS__DEFAULT__HISTOGRAM=false cargo bench -p hardened --bench metrics_scale
//! ```
//!
//! The histograms are fixed once calls start, so one run measures one layout: the configuration is
//! loaded before the first call, and the benchmark ids name the layout it gave (`default_buckets`,
//! `4_buckets`, `no_histogram`). Before measuring, the run prints the exposition's size, in all and per
//! function, and the share of it that is the duration histogram.

use std::hint::black_box;
use std::sync::Barrier;

use criterion::{Criterion, criterion_group, criterion_main};

/// The threads that call every function, each with its own metric shard, as a busy service's workers.
const THREADS: usize = 64;

/// One function per leaf module: `operation_N` in `component_N` in `service_N`, so that each has a
/// series of its own (`function="work"`, `module="metrics_scale::service_3::component_7::operation_1"`),
/// labels about as long as a service's own.
macro_rules! operations {
    ($($module:ident)*) => {
        $(
            pub(crate) mod $module {
                /// A call with an outcome to classify, as most annotated functions have.
                #[hardened::hardened(kind = "tool")]
                pub(crate) fn work(n: u64) -> Result<u64, std::num::TryFromIntError> {
                    u32::try_from(std::hint::black_box(n)).map(u64::from)
                }
            }
        )*
        pub(crate) const ALL: &[fn(u64) -> Result<u64, std::num::TryFromIntError>] = &[$($module::work),*];
    };
}

macro_rules! components {
    ($($module:ident)*) => {
        $(
            pub(crate) mod $module {
                operations!(operation_0 operation_1 operation_2 operation_3 operation_4
                            operation_5 operation_6 operation_7 operation_8 operation_9);
            }
        )*
        pub(crate) const ALL: &[&[fn(u64) -> Result<u64, std::num::TryFromIntError>]] = &[$($module::ALL),*];
    };
}

macro_rules! services {
    ($($module:ident)*) => {
        $(
            pub(crate) mod $module {
                components!(component_0 component_1 component_2 component_3 component_4
                            component_5 component_6 component_7 component_8 component_9);
            }
        )*
        const SERVICES: &[&[&[fn(u64) -> Result<u64, std::num::TryFromIntError>]]] = &[$($module::ALL),*];
    };
}

services!(service_0 service_1 service_2 service_3 service_4 service_5 service_6 service_7 service_8 service_9);

/// Every function, 1,000 of them.
fn functions() -> impl Iterator<Item = fn(u64) -> Result<u64, std::num::TryFromIntError>> {
    SERVICES.iter().flat_map(|components| components.iter()).flat_map(|operations| operations.iter()).copied()
}

/// Calls every function from each of [`THREADS`] threads, all alive at once, so that every thread has
/// a shard with cells for every function: ok calls, and one error each.
fn call_from_every_thread() {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for function in functions() {
                    for n in 0..4 {
                        let _ = black_box(function(n + thread as u64));
                    }
                    let _ = black_box(function(u64::MAX));
                }
                // Each thread keeps its shard until every thread has made its own.
                barrier.wait();
            });
        }
    });
}

/// The layout the configuration gave every function, as the benchmark ids name it.
fn layout() -> String {
    let site = hardened::sites().iter().find(|site| site.module().contains("::service_")).expect("a function here");
    match site.buckets().len() {
        0 => "no_histogram".to_owned(),
        24 if site.buckets().next() == Some(std::time::Duration::from_micros(5)) => "default_buckets".to_owned(),
        bounds => format!("{bounds}_buckets"),
    }
}

/// What the exposition of the functions here weighs: in all, per function, and the duration series'
/// share of it.
fn report(layout: &str) {
    let text = hardened::metrics::render();
    let functions = functions().count();
    let ours: Vec<&str> = text.lines().filter(|line| line.contains("::service_")).collect();
    let ours_bytes: usize = ours.iter().map(|line| line.len() + 1).sum();
    let durations: usize =
        ours.iter().filter(|line| line.starts_with("hardened_call_duration_seconds")).map(|line| line.len() + 1).sum();
    let openmetrics = hardened::metrics::render_openmetrics();
    println!(
        "metrics_scale/{layout}: {functions} functions x {THREADS} threads: Prometheus text {} bytes ({} per \
         function; {} lines), of which the functions' series {} bytes, the duration histogram {} bytes ({:.0}%); \
         OpenMetrics {} bytes",
        text.len(),
        ours_bytes / functions,
        text.lines().count(),
        ours_bytes,
        durations,
        100.0 * durations as f64 / ours_bytes.max(1) as f64,
        openmetrics.len(),
    );
}

fn metrics_scale(c: &mut Criterion) {
    // Before the first call: the configuration's `[metrics.<name>]` sections decide the histograms.
    hardened::config::load().expect("a valid configuration");
    call_from_every_thread();
    let layout = layout();
    report(&layout);

    let mut group = c.benchmark_group(format!("metrics_scale/{layout}"));
    group.sample_size(30);
    group.bench_function("render", |b| b.iter(|| black_box(hardened::metrics::render())));
    group.bench_function("render_openmetrics", |b| b.iter(|| black_box(hardened::metrics::render_openmetrics())));
    group.bench_function("gather", |b| b.iter(|| black_box(hardened::metrics::registry().gather())));
    group.finish();
}

criterion_group!(benches, metrics_scale);
criterion_main!(benches);
