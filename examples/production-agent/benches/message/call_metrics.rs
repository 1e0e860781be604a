//! The metrics of one `#[hardened]` call (its calls counter, duration histogram and in-flight gauge, and
//! its exemplar when the trace is sampled), without its span, inside a request's span under the
//! development telemetry.

use std::hint::black_box;

use agent_server::Settings;
use criterion::Criterion;
use hardened::hardened;

use crate::allocations::{self, PerUnit};
use crate::subscribers::Telemetry;

/// A step measured for its metrics alone.
#[hardened(kind = "tool", span = false)]
fn step(input: &str) -> usize {
    black_box(input).len()
}

pub(crate) fn bench(c: &mut Criterion, settings: &Settings) {
    let mut group = c.benchmark_group("metrics");
    tracing::subscriber::with_default(Telemetry::Development.subscriber(settings), || {
        let _request = tracing::info_span!("http.server.request").entered();
        group.bench_function("call", |b| b.iter(|| step(black_box("2 + 3 * 4"))));
    });
    group.finish();
}

/// What one call's metrics allocate: `metrics/call`.
pub(crate) fn allocations(settings: &Settings, units: usize) -> Vec<(String, PerUnit)> {
    tracing::subscriber::with_default(Telemetry::Development.subscriber(settings), || {
        let _request = tracing::info_span!("http.server.request").entered();
        step("warm up");
        let allocated = allocations::per_unit(units, || {
            for _ in 0..units {
                step(black_box("2 + 3 * 4"));
            }
        });
        vec![("metrics/call".to_owned(), allocated)]
    })
}
