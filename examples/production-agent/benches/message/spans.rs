//! One span as `#[hardened]` makes it (the fields of a tool call's span and one of its own), created,
//! entered, exited and closed inside a request's span, under each subscriber: the registry alone, with
//! the trace filter, with the trace-id layer, with the log layer (readable, JSON), and whole with the
//! development and the production telemetry. `*_root` is a span with no parent, as a request's is.

use std::hint::black_box;

use agent_server::Settings;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use hardened::hardened;
use hardened::telemetry::LogFormat;
use tracing::Subscriber;

use crate::allocations::{self, PerUnit};
use crate::subscribers::{self, Telemetry};

/// A step measured for its span alone: no metrics, a field of its own, a body of a few instructions.
#[hardened(kind = "tool", metrics = false, fields(length = input.len()))]
fn step(input: &str) -> usize {
    black_box(input).len()
}

pub(crate) fn bench(c: &mut Criterion, settings: &Settings) {
    let development = Telemetry::Development.config(settings);
    let json = Telemetry::Production.config(settings);
    assert_eq!(json.log_format, LogFormat::Json);
    let mut group = c.benchmark_group("span");
    span(&mut group, "registry", subscribers::registry(), true);
    span(&mut group, "filter", subscribers::filtered(&development), true);
    span(&mut group, "trace_ids", subscribers::trace_ids(&development), true);
    span(&mut group, "log_readable", subscribers::log(&development), true);
    span(&mut group, "log_json", subscribers::log(&json), true);
    for telemetry in Telemetry::ALL {
        span(&mut group, telemetry.name(), telemetry.subscriber(settings), true);
        span(&mut group, &format!("{}_root", telemetry.name()), telemetry.subscriber(settings), false);
    }
    group.finish();
}

/// One call of [`step`] per iteration under `subscriber`, inside a parent span when `child`.
fn span<S>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, subscriber: S, child: bool)
where
    S: Subscriber + Send + Sync + 'static,
{
    tracing::subscriber::with_default(subscriber, || {
        let parent = child.then(|| tracing::info_span!("http.server.request").entered());
        group.bench_function(id, |b| b.iter(|| step(black_box("2 + 3 * 4"))));
        drop(parent);
    });
}

/// What one span allocates inside a request, under each subscriber (as `bench` names them).
pub(crate) fn allocations(settings: &Settings, units: usize) -> Vec<(String, PerUnit)> {
    let development = Telemetry::Development.config(settings);
    let json = Telemetry::Production.config(settings);
    vec![
        allocated("registry", subscribers::registry(), units),
        allocated("filter", subscribers::filtered(&development), units),
        allocated("trace_ids", subscribers::trace_ids(&development), units),
        allocated("log_readable", subscribers::log(&development), units),
        allocated("log_json", subscribers::log(&json), units),
        allocated("development", Telemetry::Development.subscriber(settings), units),
        allocated("production", Telemetry::Production.subscriber(settings), units),
    ]
}

/// What one call of [`step`] allocates inside a parent span under `subscriber`: `span/<id>`.
fn allocated<S>(id: &str, subscriber: S, units: usize) -> (String, PerUnit)
where
    S: Subscriber + Send + Sync + 'static,
{
    tracing::subscriber::with_default(subscriber, || {
        let _parent = tracing::info_span!("http.server.request").entered();
        step("warm up");
        let allocated = allocations::per_unit(units, || {
            for _ in 0..units {
                step(black_box("2 + 3 * 4"));
            }
        });
        (format!("span/{id}"), allocated)
    })
}
