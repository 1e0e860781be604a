//! The Postgres audit store against a real server: the sink's batches, idempotency, concurrency and outage,
//! transactional writes, the append-only tables and the roles that write them, retention by month, the
//! migration of a table of the first schema, signed checkpoints (in a file and in the table
//! `audit_checkpoint`: the pipeline's, signed retention drops, sealed transactional streams), and the
//! verifier finding each kind of tampering.
//!
//! Needs a server: `DATABASE_URL=postgres://... cargo test -p hardened-tests -- --include-ignored`. Without
//! `--include-ignored` these tests are ignored; with it and without `DATABASE_URL` they fail. Each test
//! works in a schema of its own, dropped at the end.

use std::collections::HashSet;
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use hardened::audit::{
    AuditEvent, AuditOutcome, AuditSigningKey, Auditor, ChainProblem, EventType, GENESIS_HASH, PostgresSink,
    SealedEvent, Sink, Verification, VerifyOptions, drop_partitions_before, migrate_postgres, postgres_in_schema,
    removed_by_policy, seal_postgres_streams, seal_stream, verify_postgres, verify_postgres_all,
    verify_postgres_all_with, verify_postgres_with, write_in_tx, write_in_tx_to,
};
use hardened_tests::postgres::TestSchema;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Row as _};

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

/// Runs `sql` as a superuser tampering with the log would: in a transaction with triggers off
/// (`session_replication_role = replica`, which only a superuser may set), since the append-only
/// triggers refuse it otherwise.
async fn tamper(schema: &TestSchema, sql: &str) {
    let script = format!("BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT;");
    sqlx::raw_sql(AssertSqlSafe(script)).execute(&schema.pool).await.unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// The error `sql` fails with.
async fn refused(pool: &PgPool, sql: &str) -> String {
    match sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(pool).await {
        Ok(_) => panic!("{sql}: accepted"),
        Err(error) => error.to_string(),
    }
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
        assert_eq!(row.get::<Option<String>, _>("resource").as_deref(), event.resource.as_deref());
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

    let indexes_of = async |table: &str| -> HashSet<String> {
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2")
            .bind(&schema.name)
            .bind(table)
            .fetch_all(&schema.pool)
            .await
            .expect("the query runs")
            .into_iter()
            .collect()
    };
    let parent = indexes_of("audit_log").await;
    for index in [
        "audit_log_pkey",
        "audit_log_timestamp",
        "audit_log_event_type",
        "audit_log_user_id",
        "audit_log_session_id",
        "audit_log_failed_authentication",
    ] {
        assert!(parent.contains(index), "no index {index} among {parent:?}");
    }
    assert_eq!(parent.len(), 6, "{parent:?}");
    // This month and the next have their partition, each with the six indexes and its unique
    // (stream, sequence): each index costs every insert an entry, no more than these seven.
    let now = Utc::now();
    let next = now.checked_add_months(chrono::Months::new(1)).expect("a representable date");
    for month in [now, next] {
        let partition = format!("audit_log_{}", month.format("%Y_%m"));
        let indexes = indexes_of(&partition).await;
        assert!(indexes.contains(&format!("{partition}_stream_sequence_key")), "{indexes:?}");
        assert_eq!(indexes.len(), 7, "{indexes:?}");
    }
    assert!(indexes_of("audit_stream_head").await.contains("audit_stream_head_pkey"));
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 \
         AND table_name !~ '^audit_log_[0-9]{4}_[0-9]{2}$' ORDER BY table_name",
    )
    .bind(&schema.name)
    .fetch_all(&schema.pool)
    .await
    .expect("the query runs");
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "audit_checkpoint",
            "audit_log",
            "audit_retention",
            "audit_retention_stream",
            "audit_stream_head"
        ]
    );
    assert_eq!(schema.count("SELECT count(*) FROM _sqlx_migrations").await, 3);
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
    assert!(error.message.contains("_stream_sequence_key"), "{error}");
    // Mixed with rows already present, as in a batch written again: refused whole, heads included.
    let mixed: Vec<SealedEvent> = sealed[..5].iter().chain(&other[5..7]).chain(&other[10..]).cloned().collect();
    let error = sink.write(&mixed).await.expect_err("a taken sequence number is refused");
    assert!(error.message.contains("_stream_sequence_key"), "{error}");

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
    tamper(&schema, "UPDATE audit_log SET details = '{\"index\": 99}' WHERE sequence = 7").await;
    let problem = verify_postgres(&schema.pool, "s").await.expect("the verification runs").problem;
    assert!(
        matches!(&problem, Some(ChainProblem::Altered { stream, sequence: 7, .. }) if stream == "s"),
        "{problem:?}"
    );
    // Restored, it verifies again; then an edit of another column.
    tamper(&schema, "UPDATE audit_log SET details = '{\"index\": 7}' WHERE sequence = 7").await;
    assert!(
        verify_postgres(&schema.pool, "s").await.expect("the verification runs").is_intact(),
        "the original content verifies again"
    );
    tamper(&schema, "UPDATE audit_log SET ip_address = '192.0.2.1' WHERE sequence = 3").await;
    let problem = verify_postgres(&schema.pool, "s").await.expect("the verification runs").problem;
    assert!(matches!(problem, Some(ChainProblem::Altered { sequence: 3, .. })), "{problem:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn verification_finds_a_deleted_row() {
    let schema = TestSchema::new().await;
    written_stream(&schema, "s", 20).await;
    tamper(&schema, "DELETE FROM audit_log WHERE sequence = 5").await;
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
        tamper(&schema, &format!("UPDATE audit_log SET sequence = {to} WHERE sequence = {from}")).await;
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
    tamper(&schema, "DELETE FROM audit_log WHERE sequence >= 17").await;
    let verification = verify_postgres(&schema.pool, "s").await.expect("the verification runs");
    assert_eq!(verification.problem, Some(ChainProblem::Truncated { stream: "s".to_owned(), last: 16, head: 19 }));
    assert_eq!(verification.records, 17);

    tamper(&schema, "DELETE FROM audit_log").await;
    let problem = verify_postgres_all(&schema.pool).await.expect("the verification runs").problem;
    assert_eq!(problem, Some(ChainProblem::Truncated { stream: "s".to_owned(), last: -1, head: 19 }));
}

/// Events in the given months of 2026 (day 10, noon, a second apart), sealed as records 0, 1, ... of `stream`.
fn events_in_months(stream: &str, months: &[u32]) -> Vec<SealedEvent> {
    let events = months.iter().enumerate().map(|(index, month)| {
        let mut event = AuditEvent::new(EventType::ToolExecution).detail("index", index);
        event.timestamp = Utc.with_ymd_and_hms(2026, *month, 10, 12, 0, 0).single().expect("a valid date")
            + TimeDelta::seconds(i64::try_from(index).expect("it fits"));
        event
    });
    seal_stream(stream, events)
}

fn start_of(year: i32, month: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single().expect("a valid date")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn the_audit_log_refuses_update_delete_and_truncate_even_from_its_owner() {
    let schema = TestSchema::new().await;
    written_stream(&schema, "s", 20).await;
    let partition = format!("audit_log_{}", Utc::now().format("%Y_%m"));
    // The connection is the superuser that ran the migrations, and so owns the tables.
    for (sql, operation, table) in [
        ("UPDATE audit_log SET details = '{\"index\": 99}' WHERE sequence = 7", "update", partition.as_str()),
        ("UPDATE audit_log SET sequence = sequence + 100", "update", &partition),
        ("DELETE FROM audit_log WHERE sequence >= 17", "delete", &partition),
        ("DELETE FROM audit_log", "delete", &partition),
        ("TRUNCATE audit_log", "truncate", "audit_log"),
        (&format!("UPDATE {partition} SET hash = 'forged'"), "update", &partition),
        (&format!("DELETE FROM {partition} WHERE sequence = 0"), "delete", &partition),
        (&format!("TRUNCATE {partition}"), "truncate", &partition),
        (
            "MERGE INTO audit_log AS l USING (SELECT 5::bigint AS sequence) AS s ON l.sequence = s.sequence \
             WHEN MATCHED THEN DELETE",
            "delete",
            &partition,
        ),
    ] {
        let error = refused(&schema.pool, sql).await;
        assert!(
            error.contains(&format!(
                "{operation} on {table} refused: audit records are append-only; whole months leave through \
                 audit_log_drop_partitions_before"
            )),
            "{sql}: {error}"
        );
    }
    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, 20);
    let verification = verify_postgres(&schema.pool, "s").await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_stream_head_only_moves_forward() {
    let schema = TestSchema::new().await;
    let sealed = written_stream(&schema, "s", 20).await;
    let hash_of = |index: usize| sealed[index].event().hash.clone();
    for (sql, expected) in [
        (
            "UPDATE audit_stream_head SET sequence = 16, hash = '".to_owned() + &hash_of(16) + "'",
            "update on audit_stream_head refused: the head of stream s cannot move back from record 19 to 16; it only \
             moves forward",
        ),
        (
            "UPDATE audit_stream_head SET hash = 'forged'".to_owned(),
            "update on audit_stream_head refused: the hash of record 19 of stream s cannot change",
        ),
        (
            "UPDATE audit_stream_head SET stream = 'other'".to_owned(),
            "update on audit_stream_head refused: the head of stream s cannot become the head of other",
        ),
        (
            "DELETE FROM audit_stream_head".to_owned(),
            "delete on audit_stream_head refused: a stream's head only moves forward",
        ),
        ("TRUNCATE audit_stream_head".to_owned(), "truncate on audit_stream_head refused"),
    ] {
        let error = refused(&schema.pool, &sql).await;
        assert!(error.contains(expected), "{sql}: {error}");
    }
    // With the end of the log cut by someone who can bypass the triggers, the head still tells.
    tamper(&schema, "DELETE FROM audit_log WHERE sequence >= 17").await;
    let problem = verify_postgres(&schema.pool, "s").await.expect("the verification runs").problem;
    assert_eq!(problem, Some(ChainProblem::Truncated { stream: "s".to_owned(), last: 16, head: 19 }));
    // Forward is allowed: what the sink and write_in_tx do.
    schema.execute("UPDATE audit_stream_head SET sequence = 20, hash = 'next'".to_owned()).await;
    schema.execute("UPDATE audit_stream_head SET sequence = 20, hash = 'next'".to_owned()).await;
}

/// A role of the test's own, dropped (with its grants) when the test ends.
struct TestRole {
    name: String,
    options: PgConnectOptions,
}

impl TestRole {
    async fn new(schema: &TestSchema, purpose: &str) -> TestRole {
        let name = format!("{}_{purpose}", schema.name);
        schema.execute(format!("CREATE ROLE {name} LOGIN")).await;
        TestRole { name, options: schema.options.clone() }
    }

    /// Connections as this role (trust authentication), with the test's schema as search path.
    async fn pool(&self, schema: &TestSchema) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect_with(postgres_in_schema(self.options.clone().username(&self.name), &schema.name))
            .await
            .expect("the role connects")
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let (options, name) = (self.options.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await?;
                sqlx::raw_sql(AssertSqlSafe(format!("DROP OWNED BY {name}; DROP ROLE {name}"))).execute(&pool).await
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test role {}", self.name);
        }
    }
}

/// The grants of docs/audit.md (the SQL block that grants the writer its rights), for `schema` and `writer`.
fn documented_grants(schema: &str, writer: &str, reader: &str) -> String {
    let guide = include_str!("../../docs/audit.md");
    let block = guide
        .split("```sql\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(sql, _)| sql))
        .find(|sql| sql.contains("GRANT SELECT, INSERT ON audit.audit_log TO audit_writer"))
        .expect("docs/audit.md has the writer's grants");
    block
        .replace("audit_writer", writer)
        .replace("audit_reader", reader)
        .replace("audit.", &format!("{schema}."))
        .replace("SCHEMA audit ", &format!("SCHEMA {schema} "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_writer_role_with_the_documented_grants_writes_but_cannot_rewrite() {
    let schema = TestSchema::new().await;
    let writer = TestRole::new(&schema, "writer").await;
    let reader = TestRole::new(&schema, "reader").await;
    let grants = documented_grants(&schema.name, &writer.name, &reader.name);
    sqlx::raw_sql(AssertSqlSafe(grants.clone()))
        .execute(&schema.pool)
        .await
        .unwrap_or_else(|error| panic!("{grants}: {error}"));

    // The sink as the writer: it finds the migrations applied, opens a month no one opened yet (through
    // the function that runs with the owner's rights), and writes.
    let mut sink = PostgresSink::new(schema.options.clone().username(&writer.name)).schema(&schema.name);
    let sealed = events_in_months("app", &[1, 1, 2, 3, 3]);
    write(&mut sink, &sealed[..3]).await;
    write(&mut sink, &sealed).await;
    let pool = writer.pool(&schema).await;
    let mut transaction = pool.begin().await.expect("a transaction begins");
    write_in_tx_to(&mut transaction, "app/tx", AuditEvent::new(EventType::Custom("Transfer".into())))
        .await
        .expect("the writer writes in its transaction");
    transaction.commit().await.expect("the transaction commits");
    let verification = verify_postgres_all(&pool).await.expect("the writer verifies");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 6);
    // It seals its transactional stream into the checkpoint table, and verifies with the key.
    let key = AuditSigningKey::generate().expect("a new key");
    let sealed = seal_postgres_streams(&pool, &key, &["app/tx"]).await.expect("the writer seals");
    assert_eq!(sealed.len(), 1);

    let january = "audit_log_2026_01";
    for (sql, expected) in [
        ("UPDATE audit_log SET details = '{}'", "permission denied for table audit_log"),
        ("DELETE FROM audit_log", "permission denied for table audit_log"),
        ("TRUNCATE audit_log", "permission denied for table audit_log"),
        (&format!("DELETE FROM {january}"), &format!("permission denied for table {january}")),
        (&format!("TRUNCATE {january}"), &format!("permission denied for table {january}")),
        (&format!("DROP TABLE {january}"), &format!("must be owner of table {january}")),
        ("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only", "must be owner of table audit_log"),
        ("ALTER TABLE audit_log DETACH PARTITION audit_log_2026_01", "must be owner of table audit_log"),
        ("SET session_replication_role = replica", "permission denied to set parameter"),
        (
            "SELECT * FROM audit_log_drop_partitions_before('2026-03-01', 'cover a deletion')",
            "permission denied for function audit_log_drop_partitions_before",
        ),
        (
            "INSERT INTO audit_retention (partition, range_from, range_to, records, reason) \
             VALUES ('audit_log_2026_01', '2026-01-01', '2026-02-01', 0, 'forged')",
            "permission denied for table audit_retention",
        ),
        ("UPDATE audit_stream_head SET sequence = 0 WHERE stream = 'app'", "cannot move back from record 4 to 0"),
        ("DELETE FROM audit_stream_head", "permission denied for table audit_stream_head"),
        ("UPDATE audit_checkpoint SET checkpoint = '{}'", "permission denied for table audit_checkpoint"),
        ("DELETE FROM audit_checkpoint", "permission denied for table audit_checkpoint"),
        ("TRUNCATE audit_checkpoint", "permission denied for table audit_checkpoint"),
    ] {
        let error = refused(&pool, sql).await;
        assert!(error.contains(expected), "{sql}: {error}");
    }
    pool.close().await;

    // The reader verifies, and writes nothing.
    let pool = reader.pool(&schema).await;
    assert!(verify_postgres_all(&pool).await.expect("the reader verifies").is_intact());
    let keyed = VerifyOptions::new().public_key(key.public_key());
    let verification = verify_postgres_with(&pool, "app/tx", &keyed).await.expect("the reader verifies with the key");
    assert!(verification.is_intact() && verification.sealed == 1, "{verification:?}");
    let error = refused(&pool, "INSERT INTO audit_stream_head VALUES ('x', 0, 'x')").await;
    assert!(error.contains("permission denied for table audit_stream_head"), "{error}");
    pool.close().await;
    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn retention_drops_whole_months_and_verification_accepts_what_it_recorded() {
    let schema = TestSchema::new().await;
    let mut sink = schema.sink();
    // Record 3 of `kept` is written in March and record 4 in February: the end of a month out of order.
    let kept = events_in_months("kept", &[1, 1, 2, 3, 2, 3, 3]);
    let gone = events_in_months("gone", &[1, 2, 2]);
    write(&mut sink, &kept).await;
    write(&mut sink, &gone).await;

    let error = drop_partitions_before(&schema.pool, Utc::now(), "too early", None)
        .await
        .expect_err("this month has not ended");
    assert!(error.to_string().contains("retention drops only months that have ended"), "{error}");
    let error =
        drop_partitions_before(&schema.pool, start_of(2026, 3), " ", None).await.expect_err("a reason is needed");
    assert!(error.to_string().contains("a retention drop needs a reason"), "{error}");

    let dropped = drop_partitions_before(&schema.pool, start_of(2026, 3), "policy: keep from March", None)
        .await
        .expect("it drops");
    let dropped: Vec<(String, u64)> = dropped.into_iter().map(|dropped| (dropped.partition, dropped.records)).collect();
    assert_eq!(dropped, [("audit_log_2026_01".to_owned(), 3), ("audit_log_2026_02".to_owned(), 4)]);
    assert_eq!(schema.count("SELECT count(*) FROM audit_log").await, 3);

    let verification = verify_postgres_all(&schema.pool).await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 3);
    let verification = verify_postgres(&schema.pool, "gone").await.expect("the verification runs");
    assert!(verification.is_intact(), "every record of the stream removed by policy: {:?}", verification.problem);

    let removed: Vec<(String, u64, u64, Option<u64>, String, String)> = removed_by_policy(&schema.pool, None)
        .await
        .expect("the query runs")
        .into_iter()
        .map(|run| (run.stream, run.first_sequence, run.last_sequence, run.first_kept, run.partition, run.reason))
        .collect();
    let run = |stream: &str, first, last, kept, partition: &str| {
        (stream.to_owned(), first, last, kept, partition.to_owned(), "policy: keep from March".to_owned())
    };
    assert_eq!(
        removed,
        [
            run("gone", 0, 0, None, "audit_log_2026_01"),
            run("gone", 1, 2, None, "audit_log_2026_02"),
            run("kept", 0, 1, Some(3), "audit_log_2026_01"),
            run("kept", 2, 2, Some(3), "audit_log_2026_02"),
            run("kept", 4, 4, Some(3), "audit_log_2026_02"),
        ]
    );
    let last_removed = removed_by_policy(&schema.pool, Some("kept")).await.expect("the query runs");
    assert_eq!(last_removed[2].last_hash, kept[4].event().hash);
    assert_eq!(last_removed[2].month, start_of(2026, 2)..start_of(2026, 3));

    // The stream goes on, and still verifies.
    let mut transaction = schema.pool.begin().await.expect("a transaction begins");
    write_in_tx_to(&mut transaction, "bank/tx", AuditEvent::new(EventType::UserMessage)).await.expect("it writes");
    transaction.commit().await.expect("the transaction commits");
    assert!(verify_postgres_all(&schema.pool).await.expect("the verification runs").is_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn records_cut_without_the_retention_function_fail_verification() {
    let schema = TestSchema::new().await;
    write(&mut schema.sink(), &events_in_months("s", &[1, 1, 2, 2, 3, 3, 4, 4])).await;
    let missing = |expected: u64, found: u64| {
        move |problem: &Option<ChainProblem>| {
            matches!(problem, Some(ChainProblem::Missing { stream, expected: e, found: f, .. })
                if stream == "s" && *e == expected && *f == found)
        }
    };

    // A partition dropped by hand: the stream starts at record 2, and no retention record says why.
    schema.execute("DROP TABLE audit_log_2026_01".to_owned()).await;
    let problem = verify_postgres(&schema.pool, "s").await.expect("the verification runs").problem;
    assert!(missing(0, 2)(&problem), "{problem:?}");
    let message = problem.expect("a problem").to_string();
    assert!(message.contains("stream s is missing records 0..2 before this one"), "{message}");

    // The next month dropped by policy: records 2 and 3 are accounted for, records 0 and 1 still are not.
    drop_partitions_before(&schema.pool, start_of(2026, 3), "policy", None).await.expect("it drops");
    let problem = verify_postgres_all(&schema.pool).await.expect("the verification runs").problem;
    assert!(missing(0, 4)(&problem), "{problem:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn records_deleted_by_hand_next_to_a_retention_drop_fail_verification() {
    let schema = TestSchema::new().await;
    write(&mut schema.sink(), &events_in_months("s", &[1, 1, 2, 2, 3, 3, 4, 4])).await;
    drop_partitions_before(&schema.pool, start_of(2026, 2), "policy", None).await.expect("it drops");
    assert!(verify_postgres(&schema.pool, "s").await.expect("the verification runs").is_intact());

    // Records 2 and 3 deleted by a superuser with the triggers off: not what retention removed.
    tamper(&schema, "DELETE FROM audit_log WHERE sequence IN (2, 3)").await;
    let problem = verify_postgres(&schema.pool, "s").await.expect("the verification runs").problem;
    assert!(
        matches!(&problem, Some(ChainProblem::Missing { stream, expected: 2, found: 4, .. }) if stream == "s"),
        "{problem:?}"
    );
    // Records in the middle of what is kept.
    tamper(&schema, "DELETE FROM audit_log WHERE sequence = 6").await;
    let problem = verify_postgres_all(&schema.pool).await.expect("the verification runs").problem;
    assert!(matches!(&problem, Some(ChainProblem::Missing { expected: 2, found: 4, .. })), "{problem:?}");
}

/// The columns compared before and after the migration to partitions.
type MigratedRow = (uuid::Uuid, DateTime<Utc>, String, Option<String>, String, i64, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_table_of_the_first_migration_is_partitioned_with_its_rows_intact() {
    let schema = TestSchema::empty().await;
    // Only the first migration, as a database of an earlier version has it.
    let first = tempfile::tempdir().expect("a temporary directory");
    let name = "20261101000000_audit_log.sql";
    std::fs::copy(format!("{}/../audit/migrations/{name}", env!("CARGO_MANIFEST_DIR")), first.path().join(name))
        .expect("the first migration is copied");
    sqlx::migrate::Migrator::new(first.path())
        .await
        .expect("the migration is read")
        .run(&schema.pool)
        .await
        .expect("the first migration runs");

    // Rows as the sink of that version wrote them, in several months, and the heads.
    let mut sealed = seal_stream("old", varied_events(30));
    sealed.extend(events_in_months("months", &[1, 2, 5, 5, 11]));
    for event in sealed.iter().map(SealedEvent::event) {
        sqlx::query(
            "INSERT INTO audit_log VALUES ($1, $2, $3, $4, $5, $6, $7::inet, $8, $9::jsonb, $10, $11, $12, $13, $14, \
             $15, $16, $17)",
        )
        .bind(event.id)
        .bind(event.timestamp)
        .bind(event.event_type.as_str())
        .bind(&event.service)
        .bind(&event.user_id)
        .bind(&event.session_id)
        .bind(event.ip_address.map(|ip| ip.to_string()))
        .bind(&event.resource)
        .bind(serde_json::Value::Object(event.details.clone()).to_string())
        .bind(event.outcome.as_str())
        .bind(&event.outcome_details)
        .bind(&event.trace_id)
        .bind(&event.span_id)
        .bind(&event.stream)
        .bind(i64::try_from(event.sequence).expect("it fits"))
        .bind(&event.prev_hash)
        .bind(&event.hash)
        .execute(&schema.pool)
        .await
        .expect("the row is inserted");
    }
    schema
        .execute(format!(
            "INSERT INTO audit_stream_head VALUES ('old', 29, '{}'), ('months', 4, '{}')",
            sealed[29].event().hash,
            sealed[34].event().hash
        ))
        .await;
    let before = verify_postgres_all(&schema.pool).await.expect("the verification runs");
    assert!(before.is_intact(), "{:?}", before.problem);
    let rows = "SELECT id, \"timestamp\", details::text, host(ip_address), stream, sequence, hash \
                FROM audit_log ORDER BY stream, sequence";
    let rows_before: Vec<MigratedRow> = sqlx::query_as(rows).fetch_all(&schema.pool).await.expect("the query runs");

    migrate_postgres(&schema.pool).await.expect("the new migration runs on the old table");

    let rows_after: Vec<MigratedRow> = sqlx::query_as(rows).fetch_all(&schema.pool).await.expect("the query runs");
    assert_eq!(rows_after, rows_before);
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableoid::regclass::text FROM audit_log WHERE stream = 'months' ORDER BY 1",
    )
    .fetch_all(&schema.pool)
    .await
    .expect("the query runs");
    assert_eq!(partitions, ["audit_log_2026_01", "audit_log_2026_02", "audit_log_2026_05", "audit_log_2026_11"]);
    let after = verify_postgres_all(&schema.pool).await.expect("the verification runs");
    assert!(after.is_intact(), "{:?}", after.problem);
    assert_eq!((after.records, after.streams), (35, 2));

    // Append-only from now on; and the stream goes on where it was.
    let error = refused(&schema.pool, "DELETE FROM audit_log WHERE stream = 'old'").await;
    assert!(error.contains("refused: audit records are append-only"), "{error}");
    let mut transaction = schema.pool.begin().await.expect("a transaction begins");
    let next =
        write_in_tx_to(&mut transaction, "old", AuditEvent::new(EventType::UserMessage)).await.expect("it writes");
    transaction.commit().await.expect("the transaction commits");
    assert_eq!((next.event().sequence, &next.event().prev_hash), (30, &sealed[29].event().hash));
    assert!(verify_postgres_all(&schema.pool).await.expect("the verification runs").is_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn sinks_opening_the_same_month_at_once_all_write_their_first_batch() {
    let schema = TestSchema::new().await;
    let month = Utc.with_ymd_and_hms(2029, 7, 14, 9, 0, 0).single().expect("a valid date");
    let tasks: Vec<_> = (0..6)
        .map(|writer| {
            let mut sink = schema.sink();
            let events = (0..50).map(move |index| {
                let mut event = AuditEvent::new(EventType::ToolExecution).detail("index", index);
                event.timestamp = month + TimeDelta::seconds(index);
                event
            });
            let sealed = seal_stream(&format!("writer-{writer}"), events);
            tokio::spawn(async move { sink.write(&sealed).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("the task completes").expect("the first write succeeds");
    }
    assert_eq!(schema.count("SELECT count(*) FROM audit_log_2029_07").await, 300);
    let mut transaction = schema.pool.begin().await.expect("a transaction begins");
    let mut event = AuditEvent::new(EventType::UserMessage);
    event.timestamp = Utc.with_ymd_and_hms(2031, 2, 1, 0, 0, 0).single().expect("a valid date");
    write_in_tx_to(&mut transaction, "bank/tx", event).await.expect("write_in_tx makes its month");
    transaction.commit().await.expect("the transaction commits");
    assert_eq!(schema.count("SELECT count(*) FROM audit_log_2031_02").await, 1);
    assert!(verify_postgres_all(&schema.pool).await.expect("the verification runs").is_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_month_made_again_by_a_late_record_is_dropped_again() {
    let schema = TestSchema::new().await;
    // Record 3 comes late, stamped in January after January was dropped.
    let sealed = events_in_months("s", &[1, 2, 2, 1, 2]);
    let mut sink = schema.sink();
    write(&mut sink, &sealed[..3]).await;
    drop_partitions_before(&schema.pool, start_of(2026, 2), "policy", None).await.expect("it drops");
    write(&mut schema.sink(), &sealed[3..]).await;
    assert!(verify_postgres(&schema.pool, "s").await.expect("the verification runs").is_intact());

    let dropped =
        drop_partitions_before(&schema.pool, start_of(2026, 2), "policy", None).await.expect("it drops again");
    assert_eq!(
        dropped.iter().map(|dropped| (dropped.partition.as_str(), dropped.records)).collect::<Vec<_>>(),
        [("audit_log_2026_01", 1)]
    );
    let runs: Vec<(u64, u64)> = removed_by_policy(&schema.pool, Some("s"))
        .await
        .expect("the query runs")
        .into_iter()
        .map(|run| (run.first_sequence, run.last_sequence))
        .collect();
    assert_eq!(runs, [(0, 0), (3, 3)]);
    let verification = verify_postgres(&schema.pool, "s").await.expect("the verification runs");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 3);
}

// Signed checkpoints: the table checked against the checkpoint file of the pipeline that wrote it.

/// A pipeline signing with `key` has written `events` to the stream `signed` to the schema, with its
/// checkpoints (one every 100 events, and one at shutdown) in the file returned.
async fn write_signed(
    schema: &TestSchema,
    directory: &std::path::Path,
    key: &AuditSigningKey,
    events: impl IntoIterator<Item = AuditEvent>,
) -> std::path::PathBuf {
    let checkpoints = directory.join("audit.checkpoints");
    let auditor = Auditor::builder()
        .sink(schema.sink())
        .stream("signed")
        .spill_dir(directory.join("spill"))
        .batch_size(64)
        .signing_key(key.clone())
        .checkpoint_file(&checkpoints)
        .checkpoint_every(100, std::time::Duration::from_hours(1))
        .start()
        .expect("the pipeline starts");
    for event in events {
        auditor.emit(event);
    }
    auditor.shutdown().await.expect("every event is written");
    checkpoints
}

fn tool_events(count: usize) -> impl Iterator<Item = AuditEvent> {
    (0..count).map(|n| AuditEvent::new(EventType::ToolExecution).user_id("ada").resource("search").detail("n", n))
}

fn with_key(key: &AuditSigningKey, checkpoints: &std::path::Path) -> VerifyOptions {
    VerifyOptions::new().public_key(key.public_key()).checkpoint_file(checkpoints)
}

async fn verify_signed(schema: &TestSchema, key: &AuditSigningKey, checkpoints: &std::path::Path) -> Verification {
    verify_postgres_all_with(&schema.pool, &with_key(key, checkpoints)).await.expect("the verification runs")
}

/// The records of `stream` as the table holds them, in order.
async fn events_of(schema: &TestSchema, stream: &str) -> Vec<AuditEvent> {
    let rows = sqlx::query(
        "SELECT id, \"timestamp\", event_type, service, user_id, session_id, resource, details::text AS details, \
         outcome, outcome_details, trace_id, span_id, sequence, prev_hash, hash \
         FROM audit_log WHERE stream = $1 ORDER BY sequence",
    )
    .bind(stream)
    .fetch_all(&schema.pool)
    .await
    .expect("the rows are read");
    rows.iter()
        .map(|row| {
            let outcome: String = row.get("outcome");
            let details: String = row.get("details");
            let mut event = AuditEvent::new(EventType::named(row.get::<String, _>("event_type")));
            event.id = row.get("id");
            event.timestamp = row.get("timestamp");
            event.service = row.get::<String, _>("service").into();
            event.user_id = row.get("user_id");
            event.session_id = row.get("session_id");
            event.resource = row.get("resource");
            event.details = serde_json::from_str(&details).expect("details is a JSON object");
            event.outcome = AuditOutcome::ALL.into_iter().find(|known| known.as_str() == outcome).expect("an outcome");
            event.outcome_details = row.get("outcome_details");
            event.trace_id = row.get("trace_id");
            event.span_id = row.get("span_id");
            stream.clone_into(&mut event.stream);
            event.sequence = u64::try_from(row.get::<i64, _>("sequence")).expect("not negative");
            event.prev_hash = row.get("prev_hash");
            event.hash = row.get("hash");
            event
        })
        .collect()
}

/// Rewrites the user of record `sequence` of `stream` as an owner of the tables can: triggers off, every
/// later hash and link recomputed, and the head moved to the new last hash.
async fn forge_user_id(schema: &TestSchema, stream: &str, sequence: u64, user_id: &str) {
    let mut events = events_of(schema, stream).await;
    let index = usize::try_from(sequence).expect("it fits");
    events[index].user_id = Some(user_id.to_owned());
    let forged = seal_stream(stream, events);
    let mut transaction = schema.pool.begin().await.expect("a transaction");
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *transaction).await.expect("triggers off");
    for sealed in &forged[index..] {
        let event = sealed.event();
        sqlx::query("UPDATE audit_log SET user_id = $3, prev_hash = $4, hash = $5 WHERE stream = $1 AND sequence = $2")
            .bind(stream)
            .bind(i64::try_from(event.sequence).expect("it fits"))
            .bind(&event.user_id)
            .bind(&event.prev_hash)
            .bind(&event.hash)
            .execute(&mut *transaction)
            .await
            .expect("the record is rewritten");
    }
    let last = forged.last().expect("records").event();
    sqlx::query("UPDATE audit_stream_head SET hash = $2 WHERE stream = $1")
        .bind(stream)
        .bind(&last.hash)
        .execute(&mut *transaction)
        .await
        .expect("the head is rewritten");
    transaction.commit().await.expect("the forgery commits");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_signed_table_verifies_with_its_public_key_and_every_record_is_sealed() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    let checkpoints = write_signed(&schema, directory.path(), &key, tool_events(250)).await;

    let verification = verify_signed(&schema, &key, &checkpoints).await;
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.sealed, verification.unsealed), (250, 250, 0));
    assert!(verification.checkpoints >= 3, "{verification:?}");
    let one = verify_postgres_with(&schema.pool, "signed", &with_key(&key, &checkpoints)).await.expect("it runs");
    assert!(one.is_intact() && one.sealed == 250, "{one:?}");

    // Without keys, as before: the chain alone.
    let unkeyed = verify_postgres_all_with(&schema.pool, &VerifyOptions::new()).await.expect("it runs");
    assert!(unkeyed.is_intact() && unkeyed.checkpoints == 0 && unkeyed.sealed == 0, "{unkeyed:?}");

    // Another key is an error; without the file, only the table is read, which has none of these checkpoints.
    let other = AuditSigningKey::generate().expect("a new key");
    let wrong = verify_signed(&schema, &other, &checkpoints).await;
    assert!(matches!(wrong.problem, Some(ChainProblem::Checkpoint { .. })), "{wrong:?}");
    let table_only = verify_postgres_all_with(&schema.pool, &VerifyOptions::new().public_key(key.public_key()))
        .await
        .expect("it runs");
    assert!(matches!(table_only.problem, Some(ChainProblem::Unsealed { .. })), "{table_only:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn an_edited_user_id_with_every_later_hash_and_the_head_recomputed_fails_with_the_key() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    let checkpoints = write_signed(&schema, directory.path(), &key, tool_events(250)).await;

    forge_user_id(&schema, "signed", 10, "mallory").await;
    assert_eq!(schema.count("SELECT count(*) FROM audit_log WHERE user_id = 'mallory'").await, 1);

    // The chain alone cannot tell: the forger recomputed it.
    assert!(verify_postgres_all(&schema.pool).await.expect("it runs").is_intact());
    assert!(verify_postgres(&schema.pool, "signed").await.expect("it runs").is_intact());
    let verification = verify_signed(&schema, &key, &checkpoints).await;
    let problem = verification.problem.expect("the forgery is found");
    assert!(matches!(&problem, ChainProblem::Rewritten { sequence: 99, .. }), "{problem:?}");
    let message = problem.to_string();
    assert!(message.contains("record 99 of stream signed") && message.contains("rewritten"), "{message}");
    assert!(message.starts_with("audit_log row "), "{message}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn rows_deleted_at_the_end_with_the_head_moved_back_fail_with_the_key() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    let checkpoints = write_signed(&schema, directory.path(), &key, tool_events(250)).await;

    tamper(
        &schema,
        "DELETE FROM audit_log WHERE stream = 'signed' AND sequence >= 240; \
         UPDATE audit_stream_head SET sequence = 239, \
         hash = (SELECT hash FROM audit_log WHERE stream = 'signed' AND sequence = 239) WHERE stream = 'signed'",
    )
    .await;

    assert!(verify_postgres_all(&schema.pool).await.expect("it runs").is_intact());
    let verification = verify_signed(&schema, &key, &checkpoints).await;
    let problem = verification.problem.expect("the cut is found");
    assert!(matches!(&problem, ChainProblem::CutEnd { last: 239, sealed: 249, .. }), "{problem:?}");
    assert!(problem.to_string().contains("stream signed ends at record 239"), "{problem}");
    let one = verify_postgres_with(&schema.pool, "signed", &with_key(&key, &checkpoints)).await.expect("it runs");
    assert!(matches!(one.problem, Some(ChainProblem::CutEnd { .. })), "{one:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_stream_without_checkpoints_fails_with_the_key() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    let checkpoints = write_signed(&schema, directory.path(), &key, tool_events(50)).await;

    // A stream written past the pipeline, such as one made up whole by an owner of the tables.
    written_stream(&schema, "made-up", 20).await;

    assert!(verify_postgres_all(&schema.pool).await.expect("it runs").is_intact());
    let verification = verify_signed(&schema, &key, &checkpoints).await;
    assert!(
        matches!(&verification.problem, Some(ChainProblem::Unsealed { stream, records: 20 }) if stream == "made-up"),
        "{verification:?}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn records_sealed_then_removed_by_retention_verify_with_the_key() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    // Records 0..150 in March 2026, the rest now: checkpoints seal records 99, 199 and 249.
    let events = tool_events(250).enumerate().map(|(n, mut event)| {
        if n < 150 {
            event.timestamp = at(i64::try_from(n).expect("it fits"), 0);
        }
        event
    });
    let checkpoints = write_signed(&schema, directory.path(), &key, events).await;

    let dropped = drop_partitions_before(&schema.pool, start_of(2026, 4), "policy: keep from April", Some(&key))
        .await
        .expect("it drops");
    assert_eq!(dropped.iter().map(|dropped| dropped.records).sum::<u64>(), 150);

    // Record 99, sealed, is gone, and the signed retention checkpoint accounts for it.
    let verification = verify_signed(&schema, &key, &checkpoints).await;
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.sealed, verification.unsealed), (100, 100, 0));

    // Beyond what retention removed, a cut still fails.
    tamper(&schema, "DELETE FROM audit_log WHERE stream = 'signed' AND sequence >= 200").await;
    tamper(
        &schema,
        "UPDATE audit_stream_head SET sequence = 199, \
         hash = (SELECT hash FROM audit_log WHERE stream = 'signed' AND sequence = 199) WHERE stream = 'signed'",
    )
    .await;
    assert!(verify_postgres_all(&schema.pool).await.expect("it runs").is_intact());
    let cut = verify_signed(&schema, &key, &checkpoints).await;
    assert!(matches!(cut.problem, Some(ChainProblem::CutEnd { last: 199, sealed: 249, .. })), "{cut:?}");
}

// Checkpoints in the table `audit_checkpoint`: the PostgreSQL sink's default, where retention drops and
// transactional streams are sealed too.

/// A pipeline signing with `key` has written `events` to `stream`, with its checkpoints (one every 100
/// events, and one at shutdown) where the sink puts them by default: the table.
async fn write_signed_to_table(
    schema: &TestSchema,
    directory: &std::path::Path,
    key: &AuditSigningKey,
    stream: &str,
    events: impl IntoIterator<Item = AuditEvent>,
) {
    let auditor = Auditor::builder()
        .sink(schema.sink())
        .stream(stream)
        .spill_dir(directory.join("spill"))
        .batch_size(64)
        .signing_key(key.clone())
        .checkpoint_every(100, std::time::Duration::from_hours(1))
        .start()
        .expect("the pipeline starts");
    for event in events {
        auditor.emit(event);
    }
    auditor.shutdown().await.expect("every event is written");
}

/// The table checked with `key`, and no checkpoint file.
async fn verify_keyed(schema: &TestSchema, key: &AuditSigningKey) -> Verification {
    verify_postgres_all_with(&schema.pool, &VerifyOptions::new().public_key(key.public_key()))
        .await
        .expect("the verification runs")
}

/// Tool events, the first 100 in February 2026, the next 100 in March 2026, the rest now.
fn events_from_february(count: usize) -> impl Iterator<Item = AuditEvent> {
    tool_events(count).enumerate().map(|(n, mut event)| {
        let second = i64::try_from(n).expect("it fits");
        if n < 100 {
            event.timestamp = start_of(2026, 2) + TimeDelta::seconds(second);
        } else if n < 200 {
            event.timestamp = start_of(2026, 3) + TimeDelta::seconds(second);
        }
        event
    })
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn checkpoints_in_the_table_seal_every_record_and_catch_a_rewritten_one() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    write_signed_to_table(&schema, directory.path(), &key, "table", tool_events(250)).await;

    // Start, records 99 and 199, shutdown at 249: in the chain named after the stream.
    let rows: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT checkpoint_index, stream, sequence FROM audit_checkpoint WHERE chain = 'table' ORDER BY 1",
    )
    .fetch_all(&schema.pool)
    .await
    .expect("the checkpoints are read");
    let sealed: Vec<Option<i64>> = rows.iter().map(|row| row.2).collect();
    assert_eq!(sealed, [None, Some(99), Some(199), Some(249)]);
    assert!(rows.iter().all(|row| row.1 == "table"), "{rows:?}");

    let verification = verify_keyed(&schema, &key).await;
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.sealed, verification.checkpoints), (250, 250, 4));
    let one = verify_postgres_with(&schema.pool, "table", &VerifyOptions::new().public_key(key.public_key()))
        .await
        .expect("it runs");
    assert!(one.is_intact() && one.sealed == 250, "{one:?}");

    forge_user_id(&schema, "table", 10, "mallory").await;
    assert!(verify_postgres_all(&schema.pool).await.expect("it runs").is_intact(), "the chain alone cannot tell");
    let problem = verify_keyed(&schema, &key).await.problem.expect("the forgery is found");
    assert!(matches!(&problem, ChainProblem::Rewritten { sequence: 99, checkpoint: 1, .. }), "{problem:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_checkpoint_edited_or_removed_in_the_table_fails_with_the_key() {
    let key = AuditSigningKey::generate().expect("a new key");
    let directory = tempfile::tempdir().expect("a temporary directory");

    let edited = TestSchema::new().await;
    write_signed_to_table(&edited, directory.path(), &key, "table", tool_events(250)).await;
    // The checkpoint of record 99 made to seal the record's forged hash.
    tamper(
        &edited,
        "UPDATE audit_checkpoint SET checkpoint = regexp_replace(checkpoint, '\"hash\":\"[0-9a-f]+\"', \
         '\"hash\":\"00\"') WHERE chain = 'table' AND checkpoint_index = 1",
    )
    .await;
    let problem = verify_keyed(&edited, &key).await.problem.expect("the edit is found");
    let message = problem.to_string();
    assert!(matches!(problem, ChainProblem::Checkpoint { .. }), "{message}");
    assert!(message.contains("audit_checkpoint, chain table, checkpoint #1"), "{message}");
    assert!(message.contains("does not verify"), "{message}");

    let removed = TestSchema::new().await;
    let spill = tempfile::tempdir().expect("a temporary directory");
    write_signed_to_table(&removed, spill.path(), &key, "table", tool_events(250)).await;
    tamper(&removed, "DELETE FROM audit_checkpoint WHERE chain = 'table' AND checkpoint_index = 2").await;
    let message = verify_keyed(&removed, &key).await.problem.expect("the removal is found").to_string();
    assert!(message.contains("checkpoint #3 where #2 should come next"), "{message}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_signed_retention_drop_verifies_with_the_key() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    write_signed_to_table(&schema, directory.path(), &key, "kept", events_from_february(250)).await;

    let dropped = drop_partitions_before(&schema.pool, start_of(2026, 4), "policy: keep from April", Some(&key))
        .await
        .expect("it drops");
    assert_eq!(dropped.iter().map(|dropped| dropped.records).collect::<Vec<_>>(), [100, 100]);

    // One signed checkpoint per month dropped, listing the run it removed and the hashes around it.
    let retention: Vec<String> = sqlx::query_scalar(
        "SELECT checkpoint FROM audit_checkpoint WHERE chain = 'retention' ORDER BY checkpoint_index",
    )
    .fetch_all(&schema.pool)
    .await
    .expect("the checkpoints are read");
    assert_eq!(retention.len(), 2);
    let march: hardened::audit::Checkpoint = serde_json::from_str(&retention[1]).expect("a checkpoint");
    assert!(march.is_signed_by(&key.public_key()));
    assert_eq!(march.reason, hardened::audit::CheckpointReason::Retention);
    let run = march.removed[0].run.as_ref().expect("a run");
    assert_eq!((march.removed[0].stream.as_str(), run.first_sequence, run.last_sequence), ("kept", 100, 199));

    let verification = verify_keyed(&schema, &key).await;
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.sealed, verification.unsealed), (50, 50, 0));
    assert!(verify_postgres_all(&schema.pool).await.expect("it runs").is_intact());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn an_insider_who_cuts_a_month_and_records_it_as_retention_by_hand_is_caught_with_the_key() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    write_signed_to_table(&schema, directory.path(), &key, "kept", events_from_february(250)).await;
    // February leaves by policy, signed.
    drop_partitions_before(&schema.pool, start_of(2026, 3), "policy", Some(&key)).await.expect("it drops");
    assert!(verify_keyed(&schema, &key).await.is_intact());

    // March cut by an owner of the tables, with the rows a drop would have written, unsigned.
    let before = events_of(&schema, "kept").await;
    let (first, last) = (&before[0], &before[99]);
    assert_eq!((first.sequence, last.sequence), (100, 199));
    tamper(
        &schema,
        &format!(
            "DROP TABLE audit_log_2026_03; \
             WITH made_up AS (INSERT INTO audit_retention (partition, range_from, range_to, records, reason) \
                 VALUES ('audit_log_2026_03', '2026-03-01', '2026-04-01', 100, 'policy') RETURNING drop_id) \
             INSERT INTO audit_retention_stream \
                 (stream, first_sequence, first_prev_hash, last_sequence, last_hash, first_kept, drop_id) \
             SELECT 'kept', 100, '{}', 199, '{}', 200, drop_id FROM made_up",
            first.prev_hash, last.hash
        ),
    )
    .await;

    // The unsigned record excuses the cut to a verification without keys, not to one with them.
    assert!(verify_postgres_all(&schema.pool).await.expect("it runs").is_intact());
    let problem = verify_keyed(&schema, &key).await.problem.expect("the cut is found");
    assert!(
        matches!(&problem, ChainProblem::Missing { stream, expected: 100, found: 200, .. } if stream == "kept"),
        "{problem:?}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn a_drop_through_the_sql_function_without_the_key_is_a_cut_to_the_key() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    write_signed_to_table(&schema, directory.path(), &key, "kept", events_from_february(250)).await;

    // Whoever owns the tables can call the function, but cannot sign what it did.
    schema.execute("SELECT * FROM audit_log_drop_partitions_before('2026-03-01', 'routine')".to_owned()).await;
    assert!(verify_postgres_all(&schema.pool).await.expect("it runs").is_intact());
    let problem = verify_keyed(&schema, &key).await.problem.expect("the cut is found");
    assert!(matches!(&problem, ChainProblem::Missing { expected: 0, found: 100, .. }), "{problem:?}");
    // The same through the library without a key.
    let other = TestSchema::new().await;
    let spill = tempfile::tempdir().expect("a temporary directory");
    write_signed_to_table(&other, spill.path(), &key, "kept", events_from_february(250)).await;
    drop_partitions_before(&other.pool, start_of(2026, 3), "policy", None).await.expect("it drops");
    let problem = verify_keyed(&other, &key).await.problem.expect("the cut is found");
    assert!(matches!(&problem, ChainProblem::Missing { expected: 0, found: 100, .. }), "{problem:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn transactional_streams_are_sealed_by_seal_postgres_streams() {
    let schema = TestSchema::new().await;
    let key = AuditSigningKey::generate().expect("a new key");
    let write_some = async |count: usize| {
        for n in 0..count {
            let mut transaction = schema.pool.begin().await.expect("a transaction begins");
            let event = AuditEvent::new(EventType::Custom("Transfer".into())).user_id("ada").detail("n", n);
            write_in_tx_to(&mut transaction, "bank/tx", event).await.expect("it writes");
            transaction.commit().await.expect("it commits");
        }
    };
    write_some(5).await;
    let verification = verify_keyed(&schema, &key).await;
    assert!(
        matches!(&verification.problem, Some(ChainProblem::Unsealed { stream, records: 5 }) if stream == "bank/tx"),
        "{verification:?}"
    );

    let signed = seal_postgres_streams(&schema.pool, &key, &["bank/tx", "other/tx"]).await.expect("it seals");
    assert_eq!(signed.iter().map(|c| (c.stream.as_str(), c.sequence)).collect::<Vec<_>>(), [("bank/tx", Some(4))]);
    assert!(seal_postgres_streams(&schema.pool, &key, &["bank/tx"]).await.expect("it runs").is_empty());
    let verification = verify_keyed(&schema, &key).await;
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.sealed, verification.unsealed), (5, 0));

    // Records after the last seal are reported as not sealed, until the next one.
    write_some(2).await;
    let verification = verify_keyed(&schema, &key).await;
    assert!(verification.is_intact() && (verification.sealed, verification.unsealed) == (5, 2), "{verification:?}");
    let signed = seal_postgres_streams(&schema.pool, &key, &["bank/tx"]).await.expect("it seals");
    assert_eq!((signed[0].index, signed[0].sequence), (1, Some(6)));

    forge_user_id(&schema, "bank/tx", 1, "mallory").await;
    assert!(verify_postgres_all(&schema.pool).await.expect("it runs").is_intact());
    let problem = verify_keyed(&schema, &key).await.problem.expect("the forgery is found");
    assert!(matches!(&problem, ChainProblem::Rewritten { sequence: 4, checkpoint: 0, .. }), "{problem:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored"]
async fn table_checkpoints_ride_out_a_lost_connection_and_refused_inserts_without_a_hole() {
    let schema = TestSchema::new().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let key = AuditSigningKey::generate().expect("a new key");
    let application = format!("{}_signed", schema.name);
    let sink = PostgresSink::new(schema.options.clone().application_name(&application)).schema(&schema.name);
    let auditor = Auditor::builder()
        .sink(sink)
        .stream("lost")
        .spill_dir(directory.path().join("spill"))
        .batch_size(5)
        .signing_key(key.clone())
        .checkpoint_every(10, std::time::Duration::from_hours(1))
        .start()
        .expect("the pipeline starts");
    for event in tool_events(25) {
        auditor.emit(event);
    }
    auditor.flush().await.expect("the records and their checkpoints are written");

    // The checkpoint connection cut, and the table refusing inserts for a while.
    let name = &schema.name;
    let cut: i64 = sqlx::query_scalar(
        "WITH target AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
             AND pid <> pg_backend_pid() AND (query LIKE '%audit_checkpoint%' OR query LIKE '%txid_current%')) \
         SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM target",
    )
    .bind(&application)
    .fetch_one(&schema.pool)
    .await
    .expect("the connection is cut");
    assert_eq!(cut, 1, "the checkpoint table's connection, and not the sink's");
    schema
        .execute(format!(
            "CREATE FUNCTION {name}.refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit_checkpoint is down for the test'; END $$"
        ))
        .await;
    schema
        .execute(format!(
            "CREATE TRIGGER outage BEFORE INSERT ON {name}.audit_checkpoint \
             FOR EACH STATEMENT EXECUTE FUNCTION {name}.refuse()"
        ))
        .await;
    for event in tool_events(25) {
        auditor.emit(event);
    }
    let error = auditor.flush().await.expect_err("the checkpoints are not written");
    assert!(error.to_string().contains("audit_checkpoint is down for the test"), "{error}");

    // Back: the checkpoints queued meanwhile go in, in order, with the next ones.
    schema.execute(format!("DROP TRIGGER outage ON {name}.audit_checkpoint")).await;
    for event in tool_events(10) {
        auditor.emit(event);
    }
    auditor.shutdown().await.expect("every event and checkpoint is written");

    let indexes: Vec<i64> =
        sqlx::query_scalar("SELECT checkpoint_index FROM audit_checkpoint WHERE chain = 'lost' ORDER BY 1")
            .fetch_all(&schema.pool)
            .await
            .expect("the checkpoints are read");
    assert_eq!(indexes, (0..i64::try_from(indexes.len()).expect("it fits")).collect::<Vec<_>>());
    let verification = verify_keyed(&schema, &key).await;
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.sealed, verification.unsealed), (60, 60, 0));
}
