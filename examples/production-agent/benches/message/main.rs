//! What one `agent-server` message costs, and where it goes: `scripts/breakdown.sh` runs this and prints
//! the table of docs/performance.md ("What a message costs").
//!
//! ```text
//! cargo bench -p production-agent --bench message                # everything
//! cargo bench -p production-agent --bench message -- 'message/'  # the whole messages only
//! ```
//!
//! - A profile first: messages of the `load.sh` mix sent through the service's router in-process, with
//!   the CPU they take (the process's and the request thread's), the spans, log lines, audit events and
//!   `#[hardened]` calls they make, and what they allocate; printed, and written as JSON to
//!   `$MESSAGE_PROFILE` when set, with what each part allocates per unit. `MESSAGE_PROFILE_MESSAGES` sets
//!   how many messages (default 20,000; 0 skips it). `MESSAGE_PROFILE_ONLY=development` (or `production`)
//!   runs that profile alone and ends there: under `valgrind --tool=callgrind`, two runs of different
//!   lengths give the instructions of one message, a figure that the machine's noise does not move.
//! - `message/development`, `message/production`: the CPU of the whole process per message (the
//!   request's thread and the audit writer's), with the development configuration's telemetry and with
//!   the production configuration's sampling and JSON logs; each sample ends with an audit flush, so
//!   that the writer's work for its messages is in it.
//! - The parts, each per unit: `span/*` (one span, by subscriber), `audit_event/*` (one event built,
//!   queued, sealed, hashed, written), `http/*` (the request layers), `metrics/call` (one call's metrics),
//!   `guards/*` (the guards of one model call).

mod allocations;
mod audit_events;
mod call_metrics;
mod cpu;
mod guards;
mod http_layers;
mod profile;
mod service;
mod spans;
mod subscribers;

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::Criterion;

use crate::allocations::{Counting, PerUnit};
use crate::service::Agent;
use crate::subscribers::Telemetry;

/// mimalloc, as `agent-server` runs with, counting while a profile runs.
#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Messages of a profile, unless `MESSAGE_PROFILE_MESSAGES` says.
const PROFILE_MESSAGES: usize = 20_000;
/// Units of each part whose allocations are counted (fewer when the profile is shorter).
const UNITS: usize = 10_000;

fn main() {
    let directory = Agent::prepare_environment();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let mut agent = Agent::start(directory);
    runtime.block_on(agent.open_sessions());

    // Under `cargo test --benches` (no `--bench`), a short profile, as criterion runs each case once.
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let messages = std::env::var("MESSAGE_PROFILE_MESSAGES")
        .ok()
        .filter(|count| !count.is_empty())
        .map_or(if measuring { PROFILE_MESSAGES } else { 100 }, |count| {
            count.parse().expect("MESSAGE_PROFILE_MESSAGES is a number")
        });
    let only = std::env::var("MESSAGE_PROFILE_ONLY").ok().filter(|only| !only.is_empty());
    if let Some(only) = only {
        let telemetry = Telemetry::ALL
            .into_iter()
            .find(|telemetry| telemetry.name() == only)
            .expect("MESSAGE_PROFILE_ONLY is `development` or `production`");
        println!("{}", profile::run(&agent, &runtime, telemetry, messages).report());
        return;
    }
    if messages > 0 {
        let profiles: Vec<_> =
            Telemetry::ALL.into_iter().map(|telemetry| profile::run(&agent, &runtime, telemetry, messages)).collect();
        for profile in &profiles {
            println!("{}", profile.report());
        }
        let units = messages.min(UNITS);
        let allocated: BTreeMap<String, PerUnit> = [
            spans::allocations(&agent.settings, units),
            audit_events::allocations(&agent.settings, &runtime, units),
            http_layers::allocations(&agent.settings, &runtime, units),
            call_metrics::allocations(&agent.settings, units),
        ]
        .concat()
        .into_iter()
        .collect();
        println!("allocations per unit (calls, bytes):");
        for (part, PerUnit { calls, bytes }) in &allocated {
            println!("  {part}: {calls:.1}, {bytes:.0}");
        }
        println!();
        if let Some(path) = std::env::var_os("MESSAGE_PROFILE") {
            let json = serde_json::json!({ "profiles": profiles, "allocations_per_unit": allocated });
            let json = serde_json::to_string_pretty(&json).expect("a profile serializes");
            std::fs::write(&path, json).expect("the profile file is writable");
        }
    }

    let mut criterion = Criterion::default().configure_from_args();
    messages_bench(&mut criterion, &agent, &runtime);
    spans::bench(&mut criterion, &agent.settings);
    audit_events::bench(&mut criterion, &agent.settings, &runtime);
    http_layers::bench(&mut criterion, &agent.settings, &runtime);
    call_metrics::bench(&mut criterion, &agent.settings);
    guards::bench(&mut criterion, &runtime);
    criterion.final_summary();
}

/// The CPU of the whole process per message, the audit writer's included: a sample's messages are sent,
/// then the audit trail flushed (one fsync and one signed checkpoint per sample of thousands of messages).
fn messages_bench(c: &mut Criterion, agent: &Agent, runtime: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("message");
    group.sample_size(20).measurement_time(Duration::from_secs(30));
    for telemetry in Telemetry::ALL {
        tracing::subscriber::with_default(telemetry.subscriber(&agent.settings), || {
            group.bench_function(telemetry.name(), |b| {
                b.iter_custom(|iterations| {
                    let count = usize::try_from(iterations).unwrap_or(usize::MAX);
                    let requests = (0..count).map(|n| agent.message(n)).collect();
                    let before = cpu::process();
                    runtime.block_on(async {
                        agent.send_all(requests).await;
                        hardened::audit::flush().await.expect("the audit trail is writable");
                    });
                    cpu::process().saturating_sub(before)
                });
            });
        });
    }
    group.finish();
}
