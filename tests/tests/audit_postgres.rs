//! The Postgres audit store against a real server: the sink's batches, idempotency, concurrency and outage,
//! transactional writes, and the verifier finding each kind of tampering.
//!
//! Needs a server: `DATABASE_URL=postgres://... cargo test -p hardened-tests -- --include-ignored`. Without
//! `--include-ignored` these tests are ignored; with it and without `DATABASE_URL` they fail. Each test
//! works in a schema of its own, dropped at the end.

use std::collections::HashSet;
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use hardened::audit::{
    AuditEvent, AuditOutcome, ChainProblem, EventType, GENESIS_HASH, PostgresSink, SealedEvent, Sink, migrate_postgres,
    postgres_in_schema, seal_stream, verify_postgres, verify_postgres_all, write_in_tx, write_in_tx_to,
};
use hardened_tests::postgres::TestSchema;
use serde_json::json;
use sqlx::Row as _;
use sqlx::postgres::PgPoolOptions;

fn at(second: i64, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("a valid date")
        + TimeDelta::seconds(second)
        + TimeDelta::microseconds(micros)
}

/// Events using every column, every outcome, built-in and custom event types, IPv4 and IPv6 addresses.
fn varied_events(count: usize) -> Vec<AuditEvent> {
    let addresses: [Option<IpAddr>; 6] = [
        None,
        Some("203.0.113.9".parse().expect("a valid address")),
        Some("2001:db8::1".parse().expect("a valid address")),
        Some("::ffff:192.0.2.1".parse().expect("a valid address")),
        Some("::1".parse().expect("a valid address")),
        Some("fe80::1:2:3:4".parse().expect("a valid address")),
    ];
    (0..count)
        .map(|index| {
            let event_type = match index % 4 {
                0 => EventType::ToolExecution,
                1 => EventType::AuthenticationAttempt,
                2 => EventType::Custom("Transfer".into()),
                _ => EventType::AuthorizationCheck,
            };
            let mut event = AuditEvent::new(event_type)
                .detail("index", index)
                .detail("zeta", json!({"b": [1, 2, {"y": true, "x": null}], "a": "é ✓ \"quoted\"\n"}))
                .detail("numbers", json!([-17, 3.25, 0.000_000_1, u64::MAX, 1.0]))
                .outcome(AuditOutcome::ALL[index % 3]);
            event.timestamp = at(i64::try_from(index).expect("it fits"), 123_456);
            event.ip_address = addresses[index % addresses.len()];
            if index % 5 != 0 {
                event = event
                    .user_id(format!("user-{}", index % 7))
                    .session_id(format!("session-{}", index % 3))
                    .resource(format!("tool_{}", index % 4))
                    .outcome_details("reason, with 'quotes'");
                event.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned());
                event.span_id = Some("00f067aa0ba902b7".to_owned());
            }
            event
        })
        .collect()
}

fn plain_events(count: usize) -> Vec<AuditEvent> {
    (0..count).map(|index| AuditEvent::new(EventType::UserMessage).detail("index", index)).collect()
}

async fn write(sink: &mut PostgresSink, events: &[SealedEvent]) {
    sink.write(events).await.unwrap_or_else(|error| panic!("the write fails: {error}"));
}

/// A stream of `count` events written through a sink, and the sealed events.
async fn written_stream(schema: &TestSchema, stream: &str, count: usize) -> Vec<SealedEvent> {
    let sealed = seal_stream(stream, plain_events(count));
    let mut sink = schema.sink();
    for batch in sealed.chunks(7) {
        write(&mut sink, batch).await;
    }
    sealed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn batches_are_written_as_rows_whose_every_column_round_trips() {
    let schema = TestSchema::new().await;
    let sealed = seal_stream("roundtrip", varied_events(250));
    let mut sink = schema.sink();
    assert_eq!(sink.name(), "postgres");
    for batch in [&sealed[..100], &sealed[100..200], &sealed[200..]] {
        write(&mut sink, batch).await;
    }

    let rows = sqlx::query(
        "SELECT id, \"timestamp\", event_type, service, user_id, session_id, host(ip_address) AS ip, resource, \
         details, outcome, outcome_details, trace_id, span_id, stream, sequence, prev_hash, hash \
         FROM audit_log ORDER BY sequence",
    )
    .fetch_all(&schema.pool)
    .await
    .expect("the query runs");
    assert_eq!(rows.len(), 250);
    for (row, sealed) in rows.iter().zip(&sealed) {
        let event = sealed.event();
        assert_eq!(row.get::<uuid::Uuid, _>("id"), event.id);
        assert_eq!(row.get::<DateTime<Utc>, _>("timestamp"), event.timestamp);
        assert_eq!(row.get::<String, _>("event_type"), event.event_type.as_str());
        assert_eq!(row.get::<String, _>("service"), event.service);
        assert_eq!(row.get::<Option<String>, _>("user_id"), event.user_id);
        assert_eq!(row.get::<Option<String>, _>("session_id"), event.session_id);
        let ip = row.get::<Option<String>, _>("ip").map(|ip| ip.parse::<IpAddr>().expect("a valid address"));
        assert_eq!(ip, event.ip_address);
        assert_eq!(row.get::<Option<String>, _>("resource"), event.resource);
        assert_eq!(row.get::<serde_json::Value, _>("details"), serde_json::Value::Object(event.details.clone()));
        assert_eq!(row.get::<String, _>("outcome"), event.outcome.as_str());
        assert_eq!(row.get::<Option<String>, _>("outcome_details"), event.outcome_details);
        assert_eq!(row.get::<Option<String>, _>("trace_id"), event.trace_id);
        assert_eq!(row.get::<Option<String>, _>("span_id"), event.span_id);
        assert_eq!(row.get::<String, _>("stream"), "roundtrip");
        assert_eq!(row.get::<i64, _>("sequence"), i64::try_from(event.sequence).expect("it fits"));
        assert_eq!(row.get::<String, _>("prev_hash"), event.prev_hash);
        assert_eq!(row.get::<String, _>("hash"), event.hash);
    }
    let head: (i64, String) = sqlx::query_as("SELECT sequence, hash FROM audit_stream_head WHERE stream = 'roundtrip'")
        .fetch_one(&schema.pool)
        .await
        .expect("the query runs");
    assert_eq!(head, (249, sealed[249].event().hash.clone()));

    // Read back, every row hashes as written: the verifier rebuilds the canonical JSON from the columns.
    let verification = verify_postgres(&schema.pool, "roundtrip").await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.streams), (250, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn migrations_create_the_tables_and_indexes_in_the_schema_once() {
    let schema = TestSchema::new().await;
    migrate_postgres(&schema.pool).await.expect("migrating again is a no-op");

    let indexes: HashSet<String> = sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = $1")
        .bind(&schema.name)
        .fetch_all(&schema.pool)
        .await
        .expect("the query runs")
        .into_iter()
        .collect();
    for index in [
        "audit_log_pkey",
        "audit_log_stream_sequence_key",
        "audit_log_timestamp",
        "audit_log_event_type",
        "audit_log_user_id",
        "audit_log_session_id",
        "audit_log_failed_authentication",
        "audit_stream_head_pkey",
    ] {
        assert!(indexes.contains(index), "no index {index} among {indexes:?}");
    }
    // Each index of `audit_log` costs every insert an entry: no more than these seven.
    assert_eq!(indexes.iter().filter(|index| index.starts_with("audit_log_")).count(), 7, "{indexes:?}");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
    )
    .bind(&schema.name)
    .fetch_all(&schema.pool)
    .await
    .expect("the query runs");
    assert_eq!(tables, ["_sqlx_migrations", "audit_log", "audit_stream_head"]);
    assert_eq!(schema.count("SELECT count(*) FROM _sqlx_migrations").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_sink_creates_its_schema_and_tables_on_its_first_write() {
    let host = TestSchema::empty().await;
    // A schema that does not exist yet, with a name that needs quoting; dropped with `host` by hand below.
    let name = format!("{} Audit", host.name);
    let mut sink = PostgresSink::new(host.options.clone()).schema(&name).named("audit-db");
    assert_eq!(sink.name(), "audit-db");
    let sealed = seal_stream("fresh", plain_events(3));
    let written = sink.write(&sealed).await;
    let pool =
        PgPoolOptions::new().connect_with(postgres_in_schema(host.options.clone(), &name)).await.expect("it connects");
    let rows: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&pool).await;
    pool.close().await;
    host.execute(format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")).await;
    written.expect("the first write creates the schema and the tables");
    assert_eq!(rows.expect("the query runs"), 3);
}

#[tokio::test]
async fn a_sink_connects_only_when_it_first_writes() {
    // Nothing listens on port 1: making the sink succeeds, its first write fails, as an error, not a panic.
    let mut sink = PostgresSink::from_url("postgres://nobody@127.0.0.1:1/nothing").expect("a valid URL");
    let error = sink.write(&seal_stream("s", plain_events(1))).await.expect_err("nothing listens there");
    assert_eq!(error.sink, "postgres");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn writing_a_batch_again_duplicates_nothing() {
    let schema = TestSchema::new().await;
    let sealed = seal_stream("again", plain_events(40));
    let mut sink = schema.sink();
    write(&mut sink, &sealed[..20]).await;
    write(&mut sink, &sealed[..20]).await;
    // A batch of which the first half was already written (as after a partial failure).
    write(&mut sink, &sealed[10..30]).await;
    write(&mut sink, &sealed[10..]).await;
    // A second sink, as after a restart, writing it all again.
    write(&mut schema.sink(), &sealed).await;

    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, 40);
    assert_eq!(schema.count("SELECT count(DISTINCT id) FROM audit_log").await, 40);
    assert_eq!(schema.count("SELECT sequence FROM audit_stream_head WHERE stream = 'again'").await, 39);
    assert!(verify_postgres(&schema.pool, "again").await.expect("the verification runs").is_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_new_record_whose_place_in_its_stream_is_taken_is_an_error_never_skipped() {
    let schema = TestSchema::new().await;
    let sealed = seal_stream("shared", plain_events(10));
    let mut sink = schema.sink();
    write(&mut sink, &sealed).await;
    // A second writer on the same stream: new ids, sequence numbers taken.
    let other = seal_stream("shared", plain_events(12));
    let error = sink.write(&other[..3]).await.expect_err("a taken sequence number is refused");
    assert!(error.message.contains("audit_log_stream_sequence_key"), "{error}");
    // Mixed with rows already present, as in a batch written again: refused whole, heads included.
    let mixed: Vec<SealedEvent> = sealed[..5].iter().chain(&other[5..7]).chain(&other[10..]).cloned().collect();
    let error = sink.write(&mixed).await.expect_err("a taken sequence number is refused");
    assert!(error.message.contains("audit_log_stream_sequence_key"), "{error}");

    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, 10);
    assert_eq!(schema.count("SELECT sequence FROM audit_stream_head WHERE stream = 'shared'").await, 9);
    assert!(verify_postgres(&schema.pool, "shared").await.expect("the verification runs").is_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn eight_sinks_write_eighty_thousand_events_to_one_table() {
    let schema = TestSchema::new().await;
    let tasks: Vec<_> = (0..8)
        .map(|writer| {
            let mut sink = schema.sink();
            tokio::spawn(async move {
                let sealed = seal_stream(&format!("writer-{writer}"), plain_events(10_000));
                for batch in sealed.chunks(500) {
                    sink.write(batch).await.unwrap_or_else(|error| panic!("writer {writer}: {error}"));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("the task completes");
    }

    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, 80_000);
    assert_eq!(schema.count("SELECT count(DISTINCT id) FROM audit_log").await, 80_000);
    let per_stream: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT l.stream, count(*), max(l.sequence), h.sequence FROM audit_log l \
         JOIN audit_stream_head h USING (stream) GROUP BY l.stream, h.sequence ORDER BY l.stream",
    )
    .fetch_all(&schema.pool)
    .await
    .expect("the query runs");
    let expected: Vec<_> = (0..8).map(|writer| (format!("writer-{writer}"), 10_000, 9_999, 9_999)).collect();
    assert_eq!(per_stream, expected);
    let verification = verify_postgres_all(&schema.pool).await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.streams), (80_000, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_batch_refused_during_an_outage_is_written_whole_once_the_table_is_back() {
    let schema = TestSchema::new().await;
    let sealed = seal_stream("outage", plain_events(60));
    let application = format!("{}_sink", schema.name);
    let mut sink = PostgresSink::new(schema.options.clone().application_name(&application)).schema(&schema.name);
    write(&mut sink, &sealed[..20]).await;

    // The table refuses every insert, as an unwritable table would.
    let name = &schema.name;
    schema
        .execute(format!(
            "CREATE FUNCTION {name}.refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit_log is down for the test'; END $$"
        ))
        .await;
    schema
        .execute(format!(
            "CREATE TRIGGER outage BEFORE INSERT ON {name}.audit_log FOR EACH STATEMENT EXECUTE FUNCTION {name}.refuse()"
        ))
        .await;
    for _ in 0..2 {
        let error = sink.write(&sealed[20..40]).await.expect_err("the table refuses inserts");
        assert_eq!(error.sink, "postgres");
        assert!(error.message.contains("audit_log is down for the test"), "{error}");
    }
    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, 20);
    assert_eq!(schema.count("SELECT sequence FROM audit_stream_head").await, 19, "the head moved without its rows");

    schema.execute(format!("DROP TRIGGER outage ON {name}.audit_log")).await;
    write(&mut sink, &sealed[20..40]).await;

    // The sink's connection is cut: the next write may fail, and the one after reconnects.
    let cut: Vec<bool> =
        sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(&application)
            .fetch_all(&schema.pool)
            .await
            .expect("the query runs");
    assert_eq!(cut, [true]);
    if sink.write(&sealed[40..]).await.is_err() {
        write(&mut sink, &sealed[40..]).await;
    }

    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, 60);
    assert_eq!(schema.count("SELECT count(DISTINCT sequence) FROM audit_log").await, 60);
    let verification = verify_postgres(&schema.pool, "outage").await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 60);
}

async fn create_accounts(schema: &TestSchema) {
    schema.execute(format!("CREATE TABLE {}.accounts (id int PRIMARY KEY, owner text NOT NULL)", schema.name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_transactional_record_rolls_back_and_commits_with_its_transaction() {
    let schema = TestSchema::new().await;
    create_accounts(&schema).await;
    let open =
        |id: i32| AuditEvent::new(EventType::Custom("AccountOpened".into())).user_id("ada").detail("account", id);

    let mut transaction = schema.pool.begin().await.expect("a transaction begins");
    sqlx::query("INSERT INTO accounts VALUES (1, 'ada')").execute(&mut *transaction).await.expect("the query runs");
    let rolled_back = write_in_tx_to(&mut transaction, "bank/tx", open(1)).await.expect("the write succeeds");
    assert_eq!(rolled_back.event().sequence, 0);
    transaction.rollback().await.expect("the transaction rolls back");
    assert_eq!(schema.count("SELECT count(*) FROM accounts").await, 0);
    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, 0);
    assert_eq!(schema.count("SELECT count(*) FROM audit_stream_head").await, 0);

    let mut sealed = Vec::new();
    for id in [2, 3] {
        let mut transaction = schema.pool.begin().await.expect("a transaction begins");
        sqlx::query("INSERT INTO accounts VALUES ($1, 'ada')")
            .bind(id)
            .execute(&mut *transaction)
            .await
            .expect("the query runs");
        sealed.push(write_in_tx_to(&mut transaction, "bank/tx", open(id)).await.expect("the write succeeds"));
        transaction.commit().await.expect("the transaction commits");
    }
    let (first, second) = (sealed[0].event(), sealed[1].event());
    assert_eq!((first.stream.as_str(), first.sequence, first.prev_hash.as_str()), ("bank/tx", 0, GENESIS_HASH));
    assert_eq!((second.sequence, &second.prev_hash), (1, &first.hash));
    assert_eq!(schema.count("SELECT count(*) FROM accounts").await, 2);
    let rows: Vec<(uuid::Uuid, i64)> = sqlx::query_as("SELECT id, sequence FROM audit_log ORDER BY sequence")
        .fetch_all(&schema.pool)
        .await
        .expect("the query runs");
    assert_eq!(rows, [(first.id, 0), (second.id, 1)]);
    let verification = verify_postgres(&schema.pool, "bank/tx").await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 2);

    // Without a stream: the service's transactional stream.
    let mut transaction = schema.pool.begin().await.expect("a transaction begins");
    let default = write_in_tx(&mut transaction, open(4)).await.expect("the write succeeds");
    transaction.commit().await.expect("the transaction commits");
    assert_eq!(default.event().stream, format!("{}/tx", hardened::audit::service_name()));
    assert_eq!(default.event().sequence, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn concurrent_transactions_take_turns_on_the_stream_head() {
    let schema = TestSchema::new().await;
    create_accounts(&schema).await;
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let pool = schema.pool.clone();
            tokio::spawn(async move {
                let mut committed = 0;
                for round in 0..20 {
                    let id = task * 100 + round;
                    let mut transaction = pool.begin().await.expect("a transaction begins");
                    sqlx::query("INSERT INTO accounts VALUES ($1, 'ada')")
                        .bind(id)
                        .execute(&mut *transaction)
                        .await
                        .expect("the query runs");
                    let event = AuditEvent::new(EventType::Custom("AccountOpened".into())).detail("account", id);
                    write_in_tx_to(&mut transaction, "bank/tx", event).await.expect("the write succeeds");
                    tokio::task::yield_now().await;
                    if round % 3 == 0 {
                        transaction.rollback().await.expect("the transaction rolls back");
                    } else {
                        transaction.commit().await.expect("the transaction commits");
                        committed += 1;
                    }
                }
                committed
            })
        })
        .collect();
    let mut committed = 0;
    for task in tasks {
        committed += task.await.expect("the task completes");
    }
    assert_eq!(committed, 8 * 13);
    assert_eq!(schema.count("SELECT count(*) FROM accounts").await, committed);
    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, committed);
    assert_eq!(schema.count("SELECT max(sequence) + 1 FROM audit_log").await, committed, "the sequence has gaps");
    let verification = verify_postgres(&schema.pool, "bank/tx").await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn numbers_that_jsonb_rewrites_still_verify() {
    let schema = TestSchema::new().await;
    let event = AuditEvent::new(EventType::ToolExecution)
        .detail("exponent", 1e16)
        .detail("negative_zero", -0.0)
        .detail("whole", 2.0)
        .detail("fraction", 1.5)
        .detail("huge", 1e300)
        .detail("tiny", -1e-300)
        .detail("nested", json!({ "list": [3.0, -7.0, 0.25] }));
    let sealed = seal_stream("numbers", vec![event]);
    write(&mut schema.sink(), &sealed).await;
    let verification = verify_postgres(&schema.pool, "numbers").await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
}

/// The pipeline in front of the sink: an outage in the middle of a run (the table refusing writes, then
/// the server refusing connections), after which every event is stored exactly once and the stream verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn the_pipeline_rides_out_an_outage_without_loss_or_duplicates() {
    use std::time::Duration;

    use hardened::audit::{AuditError, Auditor};

    let schema = TestSchema::new().await;
    let spill = tempfile::tempdir().expect("a temporary directory");
    let connection_name = format!("sink_{}", schema.name);
    let sink = PostgresSink::new(schema.options.clone().application_name(&connection_name)).schema(&schema.name);
    let auditor = Auditor::builder()
        .sink(sink)
        .spill_dir(spill.path())
        .batch_size(100)
        .retries(2, Duration::from_millis(5), Duration::from_millis(20))
        .start()
        .expect("the pipeline starts");
    let emit = |from: usize, to: usize| {
        for index in from..to {
            auditor.emit(AuditEvent::new(EventType::ToolExecution).detail("index", index));
        }
    };

    emit(0, 1_000);
    auditor.flush().await.expect("the database takes the first events");

    // The table refuses writes.
    schema
        .execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit_log is read-only'; END $$"
                .to_owned(),
        )
        .await;
    schema
        .execute("CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse()".to_owned())
        .await;
    emit(1_000, 2_000);
    let outage = auditor.flush().await;
    assert!(
        matches!(&outage, Err(AuditError::Pending(pending)) if pending[0].events == 1_000),
        "the events wait in the spill file: {outage:?}"
    );

    // The writes go through again, but the connection the sink held is cut.
    schema.execute("DROP TRIGGER refuse ON audit_log".to_owned()).await;
    schema
        .execute(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{connection_name}'"
        ))
        .await;
    emit(2_000, 3_000);
    auditor.flush().await.expect("the database takes everything once it is back");

    let rows = schema.count("SELECT count(*) FROM audit_log").await;
    let distinct = schema.count("SELECT count(DISTINCT (details->>'index')::int) FROM audit_log").await;
    assert_eq!((rows, distinct), (3_000, 3_000), "every event exactly once");
    let verification = verify_postgres(&schema.pool, auditor.stream()).await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 3_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn an_untouched_stream_verifies() {
    let schema = TestSchema::new().await;
    written_stream(&schema, "kept", 2_500).await;
    written_stream(&schema, "other", 30).await;
    let verification = verify_postgres(&schema.pool, "kept").await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.streams), (2_500, 1));
    let all = verify_postgres_all(&schema.pool).await.expect("the verification runs");
    assert!(all.is_intact(), "{:?}", all.problem);
    assert_eq!((all.records, all.streams), (2_530, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn verification_finds_an_edited_row() {
    let schema = TestSchema::new().await;
    written_stream(&schema, "s", 20).await;
    schema.execute("UPDATE audit_log SET details = '{\"index\": 99}' WHERE sequence = 7".to_owned()).await;
    let problem = verify_postgres(&schema.pool, "s").await.expect("the verification runs").problem;
    assert!(
        matches!(&problem, Some(ChainProblem::Altered { stream, sequence: 7, .. }) if stream == "s"),
        "{problem:?}"
    );
    // Restored, it verifies again; then an edit of another column.
    schema.execute("UPDATE audit_log SET details = '{\"index\": 7}' WHERE sequence = 7".to_owned()).await;
    assert!(
        verify_postgres(&schema.pool, "s").await.expect("the verification runs").is_intact(),
        "the original content verifies again"
    );
    schema.execute("UPDATE audit_log SET ip_address = '192.0.2.1' WHERE sequence = 3".to_owned()).await;
    let problem = verify_postgres(&schema.pool, "s").await.expect("the verification runs").problem;
    assert!(matches!(problem, Some(ChainProblem::Altered { sequence: 3, .. })), "{problem:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn verification_finds_a_deleted_row() {
    let schema = TestSchema::new().await;
    written_stream(&schema, "s", 20).await;
    schema.execute("DELETE FROM audit_log WHERE sequence = 5".to_owned()).await;
    let problem = verify_postgres(&schema.pool, "s").await.expect("the verification runs").problem;
    assert!(matches!(problem, Some(ChainProblem::Missing { expected: 5, found: 6, .. })), "{problem:?}");
    let problem = verify_postgres_all(&schema.pool).await.expect("the verification runs").problem;
    assert!(matches!(problem, Some(ChainProblem::Missing { expected: 5, found: 6, .. })), "{problem:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn verification_finds_a_reordered_pair() {
    let schema = TestSchema::new().await;
    written_stream(&schema, "s", 20).await;
    // Swap the sequence numbers of records 3 and 4, through a free number.
    for (from, to) in [(3, 1_000), (4, 3), (1_000, 4)] {
        schema.execute(format!("UPDATE audit_log SET sequence = {to} WHERE sequence = {from}")).await;
    }
    let problem = verify_postgres(&schema.pool, "s").await.expect("the verification runs").problem;
    // Record 4 now sits third with sequence number 3, which its hash does not cover.
    assert!(matches!(problem, Some(ChainProblem::Altered { sequence: 3, .. })), "{problem:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn verification_finds_a_truncated_end() {
    let schema = TestSchema::new().await;
    written_stream(&schema, "s", 20).await;
    schema.execute("DELETE FROM audit_log WHERE sequence >= 17".to_owned()).await;
    let verification = verify_postgres(&schema.pool, "s").await.expect("the verification runs");
    assert_eq!(verification.problem, Some(ChainProblem::Truncated { stream: "s".to_owned(), last: 16, head: 19 }));
    assert_eq!(verification.records, 17);

    schema.execute("DELETE FROM audit_log".to_owned()).await;
    let problem = verify_postgres_all(&schema.pool).await.expect("the verification runs").problem;
    assert_eq!(problem, Some(ChainProblem::Truncated { stream: "s".to_owned(), last: -1, head: 19 }));
}
