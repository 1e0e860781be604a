//! The audit pipeline: what `emit` costs the caller, and how many events per second reach a sink.
//!
//! - `audit/emit`: one `Auditor::emit` of an event built beforehand, timed in bursts that fit the queue
//!   (the writer catches up, untimed, between bursts), so the figure is the caller's cost on the path it
//!   takes in normal operation: a `try_send` on the bounded queue.
//! - `audit/jsonl`: events per second from `emit` to durable JSONL lines: hashed into the chain,
//!   serialized, appended and fsynced by `flush`.
//! - `audit/jsonl_signed`: the same with a signing key: a signed checkpoint every 1,000 events (the
//!   default) and at each flush, appended to the checkpoint file and fsynced with the log. The
//!   difference from `audit/jsonl` is what checkpoints cost.
//! - `audit/checkpoint`: one checkpoint signed (Ed25519) and appended to a checkpoint file: what the
//!   writer spends every 1,000 events.
//! - With the `postgres` feature and `DATABASE_URL` set: `audit/postgres_batched` (the `PostgresSink`, one
//!   multi-row insert per batch), `audit/postgres_signed` (the same with a signing key: its checkpoints
//!   in the table `audit_checkpoint`, inserted by their own thread), against `audit/postgres_one_insert_per_event` (an INSERT per event, as a
//!   straightforward sink does), and `audit/security_report_1m` (a `SecurityReport` over a window of
//!   1,000,000 events in `PostgreSQL`).
//!
//! ```text
//! cargo bench -p hardened --bench audit
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p hardened --features postgres --bench audit
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hardened::audit::{
    AuditEvent, AuditOutcome, AuditSigningKey, Auditor, CheckpointFile, CheckpointHead, CheckpointReason, Checkpoints,
    EventType, JsonlSink,
};

/// Events per measured run of the throughput cases.
const EVENTS: usize = 50_000;
/// Events per timed burst of `emit`: what the queue holds.
const BURST: usize = 10_000;

fn event(n: usize) -> AuditEvent {
    AuditEvent::new(EventType::ToolExecution)
        .user_id("user-17")
        .session_id("session-4")
        .resource("web_search")
        .detail("n", n)
        .detail("query", "rust circuit breaker")
        .outcome(if n.is_multiple_of(10) { AuditOutcome::Failure } else { AuditOutcome::Success })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

fn jsonl_pipeline(directory: &tempfile::TempDir, queue: usize) -> Auditor {
    jsonl_builder(directory, queue).start().expect("the pipeline starts")
}

fn jsonl_builder(directory: &tempfile::TempDir, queue: usize) -> hardened::audit::AuditorBuilder {
    Auditor::builder()
        .sink(JsonlSink::open(directory.path().join("audit.jsonl")).expect("a writable log"))
        .spill_dir(directory.path().join("spill"))
        .queue_capacity(queue)
}

fn emit(c: &mut Criterion) {
    let runtime = runtime();
    let directory = tempfile::tempdir().expect("a temporary directory");
    let auditor = jsonl_pipeline(&directory, BURST + 1);
    let mut group = c.benchmark_group("audit");
    group.bench_function("emit", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            let mut left = usize::try_from(iterations).unwrap_or(usize::MAX);
            while left > 0 {
                let burst = left.min(BURST);
                let events: Vec<AuditEvent> = (0..burst).map(event).collect();
                let started = Instant::now();
                for event in events {
                    auditor.emit(black_box(event));
                }
                total += started.elapsed();
                runtime.block_on(auditor.flush()).expect("the log is writable");
                left -= burst;
            }
            total
        });
    });
    group.bench_function("new_event", |b| b.iter_batched(|| 7, |n| black_box(event(n)), BatchSize::SmallInput));
    group.finish();
}

fn jsonl(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(EVENTS as u64)).sample_size(10);
    for signed in [false, true] {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let mut builder = jsonl_builder(&directory, EVENTS + 1);
        if signed {
            builder = builder.signing_key(AuditSigningKey::generate().expect("a key"));
        }
        let auditor = builder.start().expect("the pipeline starts");
        group.bench_function(if signed { "jsonl_signed" } else { "jsonl" }, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let events: Vec<AuditEvent> = (0..EVENTS).map(event).collect();
                    let started = Instant::now();
                    for event in events {
                        auditor.emit(event);
                    }
                    runtime.block_on(auditor.flush()).expect("the log is writable");
                    total += started.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

fn checkpoint(c: &mut Criterion) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a key");
    let file = CheckpointFile::new(directory.path().join("audit.jsonl.checkpoints"));
    let checkpoints = Checkpoints::open(key, vec![Box::new(file)]).expect("a new checkpoint file");
    let hash = "5f2b8c0e4a1d9f7b3c6e8a0d2f4b6c8e0a2d4f6b8c0e2a4d6f8b0c2e4a6d8f0b";
    let stream = "agent-server/0192c9a4-7d2e-7c31-9b8a-4f1e2d3c4b5a";
    let mut sequence = 0_u64;
    let mut group = c.benchmark_group("audit");
    group.bench_function("checkpoint", |b| {
        b.iter(|| {
            sequence += 1_000;
            let head = CheckpointHead { stream, sequence, hash };
            black_box(checkpoints.seal(stream, Some(head), CheckpointReason::Interval, Vec::new()).expect("written"))
        });
    });
    group.finish();
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::time::{Duration, Instant};

    use chrono::{TimeDelta, Utc};
    use criterion::{Criterion, Throughput};
    use hardened::audit::{
        AuditEvent, AuditSigningKey, Auditor, OneInsertPerEventSink, PostgresSink, ReportOptions, SecurityReport, Sink,
        migrate_postgres, postgres_in_schema,
    };
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use sqlx::{AssertSqlSafe, PgPool};

    /// Events per measured run into `PostgreSQL`, batched and one `INSERT` at a time.
    const BATCHED_EVENTS: usize = 20_000;
    const ONE_BY_ONE_EVENTS: usize = 2_000;
    /// Events behind the security report.
    const REPORT_EVENTS: i64 = 1_000_000;
    /// The schema of those events, kept between runs.
    const REPORT_SCHEMA: &str = "hardened_bench_report";

    fn database() -> Option<PgConnectOptions> {
        let url = std::env::var("DATABASE_URL").ok()?;
        Some(url.parse().expect("DATABASE_URL is a PostgreSQL URL"))
    }

    /// A pool on `schema`, created (and emptied when `fresh`) first, with the audit tables migrated.
    async fn schema(options: &PgConnectOptions, schema: &str, fresh: bool) -> PgPool {
        let admin = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await.expect("connect");
        if fresh {
            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                .execute(&admin)
                .await
                .expect("DROP SCHEMA");
        }
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
            .execute(&admin)
            .await
            .expect("CREATE SCHEMA");
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(postgres_in_schema(options.clone(), schema))
            .await
            .expect("connect");
        migrate_postgres(&pool).await.expect("migrate");
        pool
    }

    fn throughput(
        c: &mut Criterion,
        name: &str,
        events: usize,
        key: Option<&AuditSigningKey>,
        sink: impl Fn() -> Box<dyn Sink> + Copy,
    ) {
        let runtime = super::runtime();
        let mut group = c.benchmark_group("audit");
        group.throughput(Throughput::Elements(events as u64)).sample_size(10);
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let spill = tempfile::tempdir().expect("a temporary directory");
                    let mut builder = Auditor::builder()
                        .sink(BoxedSink(sink()))
                        .spill_dir(spill.path())
                        .queue_capacity(events + 1)
                        .batch_size(1_000);
                    if let Some(key) = key {
                        builder = builder.signing_key(key.clone());
                    }
                    let auditor = builder.start().expect("the pipeline starts");
                    // The first write connects and migrates: not part of the throughput.
                    auditor.emit(super::event(0));
                    runtime.block_on(auditor.flush()).expect("PostgreSQL takes the events");
                    let batch: Vec<AuditEvent> = (0..events).map(super::event).collect();
                    let started = Instant::now();
                    for event in batch {
                        auditor.emit(event);
                    }
                    runtime.block_on(auditor.flush()).expect("PostgreSQL takes the events");
                    total += started.elapsed();
                    runtime.block_on(auditor.shutdown()).expect("the pipeline stops");
                }
                total
            });
        });
        group.finish();
    }

    /// A boxed sink, to hand either kind to the same pipeline.
    struct BoxedSink(Box<dyn Sink>);

    impl Sink for BoxedSink {
        fn name(&self) -> &str {
            self.0.name()
        }

        fn write<'a>(
            &'a mut self,
            events: &'a [hardened::audit::SealedEvent],
        ) -> hardened::audit::BoxFuture<'a, Result<(), hardened::audit::SinkError>> {
            self.0.write(events)
        }

        fn default_checkpoint_sink(&self, stream: &str) -> Option<Box<dyn hardened::audit::CheckpointSink>> {
            self.0.default_checkpoint_sink(stream)
        }
    }

    pub(super) fn sinks(c: &mut Criterion) {
        let Some(options) = database() else {
            eprintln!("audit/postgres_*: skipped, DATABASE_URL is not set");
            return;
        };
        let runtime = super::runtime();
        runtime.block_on(schema(&options, "hardened_bench_batched", true));
        runtime.block_on(schema(&options, "hardened_bench_one_by_one", true));
        throughput(c, "postgres_batched", BATCHED_EVENTS, None, || {
            let options = database().expect("checked above");
            Box::new(PostgresSink::new(options).schema("hardened_bench_batched"))
        });
        let key = AuditSigningKey::generate().expect("a new key");
        throughput(c, "postgres_signed", BATCHED_EVENTS, Some(&key), || {
            let options = database().expect("checked above");
            Box::new(PostgresSink::new(options).schema("hardened_bench_batched"))
        });
        throughput(c, "postgres_one_insert_per_event", ONE_BY_ONE_EVENTS, None, || {
            let options = database().expect("checked above");
            Box::new(OneInsertPerEventSink::new(options, Some("hardened_bench_one_by_one")))
        });
    }

    /// A million events over a day, generated in SQL, made once and kept between runs: 20 users and 50
    /// addresses, a tenth of them failed logins, tool calls to 8 tools failing one time in five.
    async fn report_events(options: &PgConnectOptions) -> PgPool {
        let pool = schema(options, REPORT_SCHEMA, false).await;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&pool).await.expect("count");
        if count == REPORT_EVENTS {
            return pool;
        }
        // The tables are append-only: made afresh rather than emptied.
        pool.close().await;
        let pool = schema(options, REPORT_SCHEMA, true).await;
        sqlx::query("SELECT audit_log_create_partitions(ARRAY[now() - interval '1 day', now()])")
            .execute(&pool)
            .await
            .expect("the partitions are made");
        sqlx::query(
            "INSERT INTO audit_log (id, \"timestamp\", event_type, service, user_id, session_id, ip_address, \
             resource, details, outcome, outcome_details, trace_id, span_id, stream, sequence, prev_hash, hash) \
             SELECT gen_random_uuid(), now() - interval '1 day' + n * interval '86 milliseconds', \
               CASE WHEN n % 10 = 0 THEN 'AuthenticationAttempt' WHEN n % 10 = 1 THEN 'AuthorizationCheck' \
                    WHEN n % 10 < 6 THEN 'ToolExecution' ELSE 'UserMessage' END, \
               'bench', 'user-' || (n % 20), 'session-' || (n % 1000), \
               ('10.0.' || (n % 50) || '.1')::inet, \
               CASE WHEN n % 10 BETWEEN 2 AND 5 THEN 'tool-' || (n % 8) END, '{}'::jsonb, \
               CASE WHEN n % 10 = 0 AND n % 3 = 0 THEN 'Failure' WHEN n % 10 = 1 AND n % 4 = 0 THEN 'Denied' \
                    WHEN n % 10 BETWEEN 2 AND 5 AND n % 5 = 0 THEN 'Failure' ELSE 'Success' END, \
               NULL, NULL, NULL, 'bench', n, repeat('0', 64), repeat('0', 64) \
             FROM generate_series(0, $1 - 1) AS n",
        )
        .bind(REPORT_EVENTS)
        .execute(&pool)
        .await
        .expect("the events are generated");
        // Autovacuum would do this: it vacuums an insert-only table once a fifth of it is new (Postgres 13 and
        // later), which marks its pages all-visible for the report's index-only scans. Done here, since the
        // table is filled at once and the server may run without autovacuum.
        sqlx::query("VACUUM (ANALYZE) audit_log").execute(&pool).await.expect("VACUUM");
        pool
    }

    pub(super) fn report(c: &mut Criterion) {
        let Some(options) = database() else {
            eprintln!("audit/security_report_1m: skipped, DATABASE_URL is not set");
            return;
        };
        let runtime = super::runtime();
        let pool = runtime.block_on(report_events(&options));
        let window = Utc::now() - TimeDelta::days(2)..Utc::now() + TimeDelta::hours(1);
        let report_options = ReportOptions::default();
        let mut group = c.benchmark_group("audit");
        group.sample_size(10);
        group.bench_function("security_report_1m", |b| {
            b.iter(|| {
                runtime
                    .block_on(SecurityReport::from_postgres(&pool, window.clone(), &report_options))
                    .expect("the report runs")
            });
        });
        group.finish();
        let report =
            runtime.block_on(SecurityReport::from_postgres(&pool, window, &report_options)).expect("the report runs");
        assert_eq!(i64::try_from(report.total_events).expect("fits"), REPORT_EVENTS, "the report covers every event");
    }
}

#[cfg(feature = "postgres")]
criterion_group!(benches, emit, jsonl, checkpoint, postgres::sinks, postgres::report);
#[cfg(not(feature = "postgres"))]
criterion_group!(benches, emit, jsonl, checkpoint);
criterion_main!(benches);
