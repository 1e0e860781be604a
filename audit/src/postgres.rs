//! The Postgres audit store (feature `postgres`): a sink, transactional writes, retention, and a verifier.
//!
//! Events go to the table `audit_log`, one row per event, and the last record of each stream to
//! `audit_stream_head`, in the same transaction, so that a verifier can tell a log whose end was deleted.
//! The tables are created by embedded migrations (`runtime/migrations`), run by [`migrate_postgres`] and by
//! [`PostgresSink`] on its first write (unless they are all applied already, so that a writer role without
//! the right to create tables can use the sink).
//!
//! # Append-only, kept by month
//!
//! Triggers refuse every `UPDATE`, `DELETE` and `TRUNCATE` of `audit_log`, for its owner too, and let a
//! stream's head only move forward. `audit_log` is partitioned by month of `timestamp` (in UTC), one
//! partition per month, which writers create ahead as they need them (`audit_log_create_partitions`, which
//! runs with its owner's rights). Records leave only with a whole month, through [`drop_partitions_before`],
//! which records what each drop removed, and given the signing key signs that record as a `retention`
//! checkpoint; the verifier accepts a stream that starts after record 0, or has a gap, only where such a
//! record covers the records missing (with keys, only a signed one).
//!
//! # Signed checkpoints
//!
//! The table `audit_checkpoint` holds signed checkpoints, one chain per signer: a pipeline's
//! ([`CheckpointTable`], the default destination of a [`PostgresSink`]'s checkpoints), the retention drops'
//! ([`RETENTION_CHAIN`]) and the transactional streams' ([`seal_postgres_streams`], [`STREAMS_CHAIN`]).
//! [`verify_postgres_with`] reads them all, and a checkpoint file too when given.
//!
//! # Schema
//!
//! Every query names the tables without a schema, so they are found through the connection's
//! `search_path`, and the migrations create them (and sqlx's `_sqlx_migrations`) in its first schema. To keep
//! the audit trail in a schema of its own, set the search path on the connect options with
//! [`postgres_in_schema`] (or [`PostgresSink::schema`], which also creates the schema). A pool whose search
//! path names only the audit schema sees no other table unqualified: an application that also writes its own
//! tables through it sets a search path of its own instead, such as `audit, public`.
//!
//! # Runtimes
//!
//! [`PostgresSink`] opens its connection itself, on its first write, so that the connection belongs to the
//! runtime of the pipeline's writer thread, never to the application's.
//!
//! # Write cost and durability
//!
//! A batch is one statement, autocommitted, so one round trip and one commit: its rows (one multi-row
//! insert from arrays, one array per column) and the heads of its streams. Postgres pays, for each row, the
//! heap tuple and one entry in each index of `audit_log`; the migration keeps to the indexes that the
//! [security report](super::SecurityReport) and the usual look-ups (a time range, an event type, a user, a
//! session) need, and indexes a user or a session only on the rows that have one.
//!
//! The sink relies on `synchronous_commit` (`on` by default): a batch it reports written is durable, and
//! only then does the pipeline let its events go. Do not turn it off for the sessions of the audit sink (or
//! the database): a crash would then lose the last batches that the pipeline already considers written.
//!
//! # Round trips
//!
//! A row read back hashes as it was written: timestamps are microseconds on both sides, `ip_address` is an
//! `inet` read back through `host()`, and `details` is `jsonb`, whose reordering of keys does not matter to
//! the canonical JSON, which sorts them. `jsonb` rewrites some numbers (`1e16` comes back as
//! `10000000000000000`, `-0.0` as `0`); the canonical JSON writes every whole float as the integer it
//! equals, so such records hash the same either way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Datelike as _, TimeZone as _, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{Connection as _, PgPool, Postgres, Row as _, Transaction};

use super::chain::{Chain, ChainProblem, ChainVerifier, GENESIS_HASH, Location, SealedEvent, Verification};
use super::checkpoint::{Checkpoint, CheckpointHead, CheckpointReason, CheckpointSink, Removed, RemovedRun};
use super::event::{AuditEvent, AuditOutcome, EventType};
use super::keys::AuditSigningKey;
use super::sink::{Sink, SinkError};
use super::verify::{SealCheck, Seals, VerifyOptions};
use hardened_core::support::BoxFuture;

/// The columns of `audit_log`, in insert order.
macro_rules! columns {
    () => {
        "id, \"timestamp\", event_type, service, user_id, session_id, ip_address, resource, details, outcome, \
         outcome_details, trace_id, span_id, stream, sequence, prev_hash, hash"
    };
}

/// Inserts the rows of 17 parallel arrays, one per column, with `$18..$20` free for the heads.
///
/// The arrays are unnested in the select list, in step, rather than by `UNNEST(...)` in `FROM`: a function
/// scan stores each array's elements in a tuple store before joining them into rows, which takes Postgres
/// about twice as long for a batch (3.4 ms against 1.6 ms for 1,000 rows here).
macro_rules! insert_unnest {
    () => {
        concat!(
            "INSERT INTO audit_log (",
            columns!(),
            ") SELECT id, ts, event_type, service, user_id, session_id, ip::inet, resource, details::jsonb, outcome, \
             outcome_details, trace_id, span_id, stream, sequence, prev_hash, hash \
             FROM (SELECT unnest($1::uuid[]) AS id, unnest($2::timestamptz[]) AS ts, unnest($3::text[]) AS event_type, \
             unnest($4::text[]) AS service, unnest($5::text[]) AS user_id, unnest($6::text[]) AS session_id, \
             unnest($7::text[]) AS ip, unnest($8::text[]) AS resource, unnest($9::text[]) AS details, \
             unnest($10::text[]) AS outcome, unnest($11::text[]) AS outcome_details, unnest($12::text[]) AS trace_id, \
             unnest($13::text[]) AS span_id, unnest($14::text[]) AS stream, unnest($15::int8[]) AS sequence, \
             unnest($16::text[]) AS prev_hash, unnest($17::text[]) AS hash) AS t"
        )
    };
}

/// Moves the heads of the streams of a batch (`$18..$20`: stream, sequence, hash) forward, never back: a
/// data-modifying `WITH`, so that the rows and the heads are one statement, one transaction, one round trip.
macro_rules! advance_heads {
    () => {
        "WITH heads AS (INSERT INTO audit_stream_head AS head (stream, sequence, hash) \
         SELECT * FROM UNNEST($18::text[], $19::int8[], $20::text[]) \
         ON CONFLICT (stream) DO UPDATE SET sequence = EXCLUDED.sequence, hash = EXCLUDED.hash \
         WHERE head.sequence < EXCLUDED.sequence) "
    };
}

/// A batch none of whose rows is present, which is what a batch almost always is: a plain insert, which
/// costs Postgres less than `ON CONFLICT`'s speculative insertion of each row. A row already present makes
/// it fail with a unique violation, and the sink writes the batch again with [`INSERT_BATCH_AGAIN`].
const INSERT_BATCH: &str = concat!(advance_heads!(), insert_unnest!());

/// A batch some of whose rows may be present (written before an error the sink did not see the end of):
/// rows already present (same id, and so the same timestamp, which the primary key of the partitioned table
/// includes) are skipped, so that a batch written again is not duplicated.
const INSERT_BATCH_AGAIN: &str =
    concat!(advance_heads!(), insert_unnest!(), " ON CONFLICT (id, \"timestamp\") DO NOTHING");

/// One row of a transactional write: an id already present is an error, never skipped, since the head moves.
const INSERT_ONE: &str = insert_unnest!();

/// One row, autocommitted, for [`OneInsertPerEventSink`].
const INSERT_ROW: &str = concat!(
    "INSERT INTO audit_log (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7::inet, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16, $17) \
     ON CONFLICT (id, \"timestamp\") DO NOTHING"
);

/// Locks the head row of a stream, inserting a placeholder (sequence -1) if the stream has none yet, and
/// returns it. `ON CONFLICT DO UPDATE` locks the row like `SELECT ... FOR UPDATE` does, and waits for a
/// concurrent transaction inserting the same stream instead of failing. First makes sure that the month of
/// the event (`$2`) has its partition, in the same round trip.
const LOCK_HEAD: &str = "WITH month AS MATERIALIZED (SELECT audit_log_create_partitions(ARRAY[$2::timestamptz])) \
     INSERT INTO audit_stream_head AS head (stream, sequence, hash) SELECT $1, -1, '' FROM month \
     ON CONFLICT (stream) DO UPDATE SET stream = EXCLUDED.stream \
     RETURNING head.sequence, head.hash";

/// Creates the partitions of the months `$1` falls in, those missing (see the migration).
const CREATE_PARTITIONS: &str = "SELECT audit_log_create_partitions($1)";

const SET_HEAD: &str = "UPDATE audit_stream_head SET sequence = $2, hash = $3 WHERE stream = $1";

/// The columns a verifier reads, in the order [`event_from_row`] takes them.
macro_rules! select_columns {
    () => {
        "SELECT id, \"timestamp\", event_type, service, user_id, session_id, host(ip_address) AS ip_address, \
         resource, details::text AS details, outcome, outcome_details, trace_id, span_id, stream, sequence, \
         prev_hash, hash FROM audit_log "
    };
}

const PAGE_OF_STREAM: &str =
    concat!(select_columns!(), "WHERE stream = $1 AND sequence > $2 ORDER BY sequence LIMIT $3");

const PAGE_OF_ALL: &str =
    concat!(select_columns!(), "WHERE (stream, sequence) > ($1, $2) ORDER BY stream, sequence LIMIT $3");

/// Rows read per query by a verifier: its memory does not grow with the table.
const PAGE: i64 = 1000;

/// One consistent snapshot for a verification, so that rows and heads are read as of the same moment.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// Connect options whose connections find (and [`migrate_postgres`] creates) the audit tables in `schema`:
/// sets the connection's `search_path` to that schema alone.
///
/// ```
/// use hardened::audit::postgres_in_schema;
/// use sqlx::postgres::PgConnectOptions;
///
/// let options = postgres_in_schema(PgConnectOptions::new().database("app"), "audit");
/// ```
#[must_use]
pub fn postgres_in_schema(options: PgConnectOptions, schema: &str) -> PgConnectOptions {
    options.options([("search_path", quote_identifier(schema))])
}

/// Creates or updates the audit tables, in the first schema of the connection's search path (which must
/// exist; [`PostgresSink::schema`] creates it). Migrations already applied are skipped; concurrent callers
/// wait for each other.
///
/// Run it as the role that owns the audit tables (see the role setup in `docs/audit.md`): the tables, the
/// triggers that make them append-only, and the month partitions belong to that role.
pub async fn migrate_postgres(pool: &PgPool) -> Result<(), MigrateError> {
    let mut connection = pool.acquire().await?;
    run_migrations(&mut connection, None).await
}

/// The embedded migrations.
fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

/// Whether every embedded migration is recorded as applied, with its checksum, in `_sqlx_migrations`: then
/// a sink has nothing to migrate, and does not need the rights that migrating takes (creating
/// `_sqlx_migrations` if missing, which a writer role may not do). Any error reading it means "no".
async fn migrations_applied(connection: &mut PgConnection, migrator: &Migrator) -> bool {
    let Ok(applied) =
        sqlx::query_as::<_, (i64, Vec<u8>)>("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *connection)
            .await
    else {
        return false;
    };
    migrator.iter().filter(|migration| migration.migration_type.is_up_migration()).all(|migration| {
        applied.iter().any(|(version, checksum)| *version == migration.version && **checksum == *migration.checksum)
    })
}

/// Runs the migrations on `connection`, creating `create_schema` first if given.
///
/// Through `run_direct`, what `Migrator::run` calls once it has a connection: `run`'s `Acquire` bound makes
/// the future not provably `Send` for every lifetime, which the sinks' futures must be (as sqlx's comment on
/// `run_direct` says).
async fn run_migrations(connection: &mut PgConnection, create_schema: Option<&str>) -> Result<(), MigrateError> {
    let mut migrator = migrator();
    if let Some(schema) = create_schema {
        // Created under the migrator's lock, so that sinks starting together do not race to create it.
        migrator.create_schema(quote_identifier(schema));
    }
    migrator.run_direct(None, connection, false).await
}

/// `name` as a quoted SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A month in UTC: year and month (1 to 12).
type Month = (i32, u32);

fn month_of(timestamp: &DateTime<Utc>) -> Month {
    (timestamp.year(), timestamp.month())
}

fn next_month((year, month): Month) -> Month {
    if month == 12 { (year + 1, 1) } else { (year, month + 1) }
}

/// The first instant of `month`, if chrono can represent it.
fn month_start((year, month): Month) -> Option<DateTime<Utc>> {
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single()
}

/// Where a sink connects, and its connection once open.
struct Connector {
    options: PgConnectOptions,
    schema: Option<String>,
    connection: Option<PgConnection>,
    /// The months whose partition this connection created or found: a batch in these months writes at once.
    months: BTreeSet<Month>,
}

impl Connector {
    fn new(options: PgConnectOptions) -> Connector {
        Connector { options, schema: None, connection: None, months: BTreeSet::new() }
    }

    fn schema(&mut self, schema: &str) {
        self.options = postgres_in_schema(self.options.clone(), schema);
        self.schema = Some(schema.to_owned());
    }

    /// The connection: opened and the tables migrated on first use, and again after an error.
    async fn connection(&mut self) -> Result<&mut PgConnection, String> {
        if self.connection.is_none() {
            let mut connection = PgConnection::connect_with(&self.options).await.map_err(|error| error.to_string())?;
            if !migrations_applied(&mut connection, &migrator()).await {
                run_migrations(&mut connection, self.schema.as_deref())
                    .await
                    .map_err(|error| format!("migrating the audit tables: {error}"))?;
            }
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("just opened"))
    }

    /// The connection, with the partition of every month of `events` and of the month after the latest,
    /// so that the first events of a month find their partition made. A batch in months already seen costs
    /// one comparison per event; a new month, one more round trip.
    async fn connection_for<'a>(
        &mut self,
        events: impl Iterator<Item = &'a AuditEvent>,
    ) -> Result<&mut PgConnection, String> {
        let mut missing = BTreeSet::new();
        let (mut previous, mut latest) = (None, None);
        for event in events {
            let month = month_of(&event.timestamp);
            if previous == Some(month) {
                continue;
            }
            previous = Some(month);
            latest = latest.max(Some(month));
            if !self.months.contains(&month) {
                missing.insert(month);
            }
        }
        if let Some(ahead) = latest.map(next_month).filter(|ahead| !self.months.contains(ahead)) {
            missing.insert(ahead);
        }
        let connection = self.connection().await?;
        if !missing.is_empty() {
            let starts: Vec<DateTime<Utc>> = missing.iter().copied().filter_map(month_start).collect();
            if let Err(error) = sqlx::query(CREATE_PARTITIONS).bind(starts).execute(&mut *connection).await {
                self.reset();
                return Err(format!("creating the month partitions of audit_log: {error}"));
            }
            self.months.extend(missing);
        }
        Ok(self.connection.as_mut().expect("opened above"))
    }

    /// Forgets the connection after an error: whatever the error, the next write starts afresh.
    fn reset(&mut self) {
        self.connection = None;
        self.months.clear();
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the options: they may hold a password.
        f.debug_struct("Connector")
            .field("host", &self.options.get_host())
            .field("database", &self.options.get_database())
            .field("schema", &self.schema)
            .field("connected", &self.connection.is_some())
            .field("months", &self.months)
            .finish()
    }
}

/// Writes audit events to Postgres: each batch in one transaction, as one multi-row insert, with the head
/// of each stream moved forward in the same transaction.
///
/// The sink opens its own connection on its first write (so on the runtime of the pipeline's writer), runs
/// the migrations then if any is not applied yet, and opens a new one after any error. Before writing
/// events of a month it has not seen on its connection, it makes that month's partition and the next
/// month's, if missing. A batch written again is not duplicated: rows whose id is present are skipped
/// (`ON CONFLICT (id, "timestamp") DO NOTHING`, in the statement the sink falls back to when its plain
/// insert finds a row present). A row whose id is new but whose stream and sequence number are taken in
/// the same month is an error (two writers share a stream), never silently dropped; in another month, the
/// verifier finds it.
///
/// ```
/// use hardened::audit::{PostgresSink, Sink};
///
/// // Connects on its first write: give it to the pipeline, whose writer thread runs it.
/// let sink = PostgresSink::from_url("postgres://audit@db.internal/app")?.schema("audit");
/// assert_eq!(sink.name(), "postgres");
/// # Ok::<(), sqlx::Error>(())
/// ```
#[derive(Debug)]
pub struct PostgresSink {
    name: String,
    connector: Connector,
}

impl PostgresSink {
    /// A sink that will connect with `options`.
    #[must_use]
    pub fn new(options: PgConnectOptions) -> PostgresSink {
        PostgresSink { name: "postgres".to_owned(), connector: Connector::new(options) }
    }

    /// A sink that will connect to `url` (`postgres://user:password@host:port/database?...`); only parses it.
    pub fn from_url(url: &str) -> Result<PostgresSink, sqlx::Error> {
        Ok(PostgresSink::new(url.parse()?))
    }

    /// Keeps the audit tables in `schema`, created if missing (see [`postgres_in_schema`]).
    #[must_use]
    pub fn schema(mut self, schema: &str) -> PostgresSink {
        self.connector.schema(schema);
        self
    }

    /// Names the sink in metrics and its spill file (default: `postgres`).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> PostgresSink {
        self.name = name.into();
        self
    }

    async fn write_batch(&mut self, events: &[SealedEvent]) -> Result<(), String> {
        if events.is_empty() {
            return Ok(());
        }
        let mut heads = BTreeMap::<&str, (i64, &str)>::new();
        for event in events.iter().map(SealedEvent::event) {
            let sequence = sequence_of(event)?;
            let head = heads.entry(&event.stream).or_insert((sequence, &event.hash));
            if sequence >= head.0 {
                *head = (sequence, &event.hash);
            }
        }
        // In stream order, so that sinks writing the same streams lock their heads in the same order.
        let heads: (Vec<&str>, (Vec<i64>, Vec<&str>)) = heads.into_iter().unzip();
        let rows = Columns::of(events.iter().map(SealedEvent::event))?;

        let connection = self.connector.connection_for(events.iter().map(SealedEvent::event)).await?;
        // One statement, so one transaction: its rows and its heads are committed together or not at all.
        let mut result = rows.bind_with_heads(sqlx::query(INSERT_BATCH), &heads).execute(&mut *connection).await;
        if let Err(sqlx::Error::Database(error)) = &result
            && error.kind() == sqlx::error::ErrorKind::UniqueViolation
        {
            // Some rows are present already (or a stream's sequence number is taken, which the statement
            // that skips present rows reports in its turn).
            let rows = Columns::of(events.iter().map(SealedEvent::event))?;
            result = rows.bind_with_heads(sqlx::query(INSERT_BATCH_AGAIN), &heads).execute(&mut *connection).await;
        }
        result.map(drop).map_err(|error| {
            self.connector.reset();
            error.to_string()
        })
    }
}

impl Sink for PostgresSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a mut self, events: &'a [SealedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move { self.write_batch(events).await.map_err(|message| SinkError::new(&self.name, message)) })
    }

    /// The table `audit_checkpoint` beside the records, in the chain `stream` (see [`CheckpointTable`]).
    fn default_checkpoint_sink(&self, stream: &str) -> Option<Box<dyn CheckpointSink>> {
        let mut connector = Connector::new(self.connector.options.clone());
        connector.schema.clone_from(&self.connector.schema);
        Some(Box::new(CheckpointTable::with_connector(connector, stream)))
    }
}

/// A baseline for benchmarks, not for use: writes each event with its own `INSERT`, autocommitted, as a
/// straightforward sink would, and keeps no stream heads (so a verifier cannot tell a truncated end).
/// Use [`PostgresSink`].
#[doc(hidden)]
#[derive(Debug)]
pub struct OneInsertPerEventSink {
    name: String,
    connector: Connector,
}

impl OneInsertPerEventSink {
    /// A sink that will connect with `options` and keep the tables in `schema`, if given.
    #[must_use]
    pub fn new(options: PgConnectOptions, schema: Option<&str>) -> OneInsertPerEventSink {
        let mut connector = Connector::new(options);
        if let Some(schema) = schema {
            connector.schema(schema);
        }
        OneInsertPerEventSink { name: "postgres-one-insert-per-event".to_owned(), connector }
    }

    async fn write_each(&mut self, events: &[SealedEvent]) -> Result<(), String> {
        let connection = self.connector.connection_for(events.iter().map(SealedEvent::event)).await?;
        let mut result = Ok(());
        for event in events.iter().map(SealedEvent::event) {
            let sequence = sequence_of(event)?;
            let details = serde_json::Value::Object(event.details.clone());
            result = sqlx::query(INSERT_ROW)
                .bind(event.id)
                .bind(event.timestamp)
                .bind(event.event_type.as_str())
                .bind(&event.service)
                .bind(&event.user_id)
                .bind(&event.session_id)
                .bind(event.ip_address.map(|ip| ip.to_string()))
                .bind(&event.resource)
                .bind(details.to_string())
                .bind(event.outcome.as_str())
                .bind(&event.outcome_details)
                .bind(&event.trace_id)
                .bind(&event.span_id)
                .bind(&event.stream)
                .bind(sequence)
                .bind(&event.prev_hash)
                .bind(&event.hash)
                .execute(&mut *connection)
                .await
                .map(drop);
            if result.is_err() {
                break;
            }
        }
        result.map_err(|error| {
            self.connector.reset();
            error.to_string()
        })
    }
}

impl Sink for OneInsertPerEventSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a mut self, events: &'a [SealedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move { self.write_each(events).await.map_err(|message| SinkError::new(&self.name, message)) })
    }
}

/// The sequence number of `event` as a `bigint`.
fn sequence_of(event: &AuditEvent) -> Result<i64, String> {
    i64::try_from(event.sequence).map_err(|_| format!("sequence number {} does not fit a bigint", event.sequence))
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// A batch as one array per column.
#[derive(Default)]
struct Columns<'a> {
    id: Vec<uuid::Uuid>,
    timestamp: Vec<chrono::DateTime<chrono::Utc>>,
    event_type: Vec<&'a str>,
    service: Vec<&'a str>,
    user_id: Vec<Option<&'a str>>,
    session_id: Vec<Option<&'a str>>,
    ip_address: Vec<Option<String>>,
    resource: Vec<Option<&'a str>>,
    details: Vec<String>,
    outcome: Vec<&'static str>,
    outcome_details: Vec<Option<&'a str>>,
    trace_id: Vec<Option<&'a str>>,
    span_id: Vec<Option<&'a str>>,
    stream: Vec<&'a str>,
    sequence: Vec<i64>,
    prev_hash: Vec<&'a str>,
    hash: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(events: impl Iterator<Item = &'a AuditEvent>) -> Result<Columns<'a>, String> {
        let mut columns = Columns::default();
        for event in events {
            columns.sequence.push(sequence_of(event)?);
            columns.id.push(event.id);
            columns.timestamp.push(event.timestamp);
            columns.event_type.push(event.event_type.as_str());
            columns.service.push(&event.service);
            columns.user_id.push(event.user_id.as_deref());
            columns.session_id.push(event.session_id.as_deref());
            columns.ip_address.push(event.ip_address.map(|ip| ip.to_string()));
            columns.resource.push(event.resource.as_deref());
            columns.details.push(serde_json::to_string(&event.details).map_err(|error| error.to_string())?);
            columns.outcome.push(event.outcome.as_str());
            columns.outcome_details.push(event.outcome_details.as_deref());
            columns.trace_id.push(event.trace_id.as_deref());
            columns.span_id.push(event.span_id.as_deref());
            columns.stream.push(&event.stream);
            columns.prev_hash.push(&event.prev_hash);
            columns.hash.push(&event.hash);
        }
        Ok(columns)
    }

    /// Binds the columns and the heads (`(streams, (sequences, hashes))`) of a batch.
    fn bind_with_heads<'q>(
        self,
        query: PgQuery<'q>,
        (streams, (sequences, hashes)): &(Vec<&'q str>, (Vec<i64>, Vec<&'q str>)),
    ) -> PgQuery<'q> {
        self.bind(query).bind(streams.clone()).bind(sequences.clone()).bind(hashes.clone())
    }

    fn bind(self, query: PgQuery<'_>) -> PgQuery<'_> {
        query
            .bind(self.id)
            .bind(self.timestamp)
            .bind(self.event_type)
            .bind(self.service)
            .bind(self.user_id)
            .bind(self.session_id)
            .bind(self.ip_address)
            .bind(self.resource)
            .bind(self.details)
            .bind(self.outcome)
            .bind(self.outcome_details)
            .bind(self.trace_id)
            .bind(self.span_id)
            .bind(self.stream)
            .bind(self.sequence)
            .bind(self.prev_hash)
            .bind(self.hash)
    }
}

/// Writes `event` in the application's transaction, chained in the stream `<service name>/tx`: committed
/// with the transaction's other writes, or rolled back with them. See [`write_in_tx_to`].
///
/// ```no_run
/// # async fn transfer(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
/// use hardened::audit::{AuditEvent, EventType, write_in_tx};
///
/// let mut transaction = pool.begin().await?;
/// sqlx::query("UPDATE accounts SET balance = balance - 10 WHERE id = 1").execute(&mut *transaction).await?;
/// write_in_tx(&mut transaction, AuditEvent::new(EventType::Custom("Transfer".into())).user_id("ada")).await?;
/// transaction.commit().await?;
/// # Ok(())
/// # }
/// ```
pub async fn write_in_tx(
    transaction: &mut Transaction<'_, Postgres>,
    event: AuditEvent,
) -> Result<SealedEvent, sqlx::Error> {
    write_in_tx_to(transaction, &tx_stream(), event).await
}

/// Writes `event` in the application's transaction, chained in `stream`, and returns it sealed.
///
/// Locks the stream's head row until the transaction ends (creating it for a new stream, and the event's
/// month partition if missing), places the event after the head, inserts it and moves the head: transactions writing the same stream take turns, and one
/// that rolls back leaves neither its record nor a gap. Under `REPEATABLE READ` or `SERIALIZABLE`, a
/// transaction that finds the head moved by another fails with a serialization error, to be retried as a
/// whole, as usual at those levels.
///
/// Keep the stream for transactional writes only: the pipeline's streams are written by its own sinks.
///
/// No checkpoint is signed here (no work per record): the application seals its transactional streams with
/// [`seal_postgres_streams`], on an interval and at shutdown. Until a stream's first seal, a verification
/// with keys reports it as [`ChainProblem::Unsealed`]; the records after its last seal are counted as not
/// sealed ([`Verification::unsealed`]).
pub async fn write_in_tx_to(
    transaction: &mut Transaction<'_, Postgres>,
    stream: &str,
    event: AuditEvent,
) -> Result<SealedEvent, sqlx::Error> {
    let (last_sequence, last_hash): (i64, String) =
        sqlx::query_as(LOCK_HEAD).bind(stream).bind(event.timestamp).fetch_one(&mut **transaction).await?;
    let mut chain = match u64::try_from(last_sequence) {
        Ok(last_sequence) => Chain::resume(stream.to_owned(), last_sequence, last_hash),
        Err(_) => Chain::new(stream.to_owned()),
    };
    let sealed = chain.seal(event);
    let event = sealed.event();
    let rows = Columns::of(std::iter::once(event)).map_err(|message| sqlx::Error::Encode(message.into()))?;
    rows.bind(sqlx::query(INSERT_ONE)).execute(&mut **transaction).await?;
    sqlx::query(SET_HEAD)
        .bind(stream)
        .bind(sequence_of(event).map_err(|message| sqlx::Error::Encode(message.into()))?)
        .bind(&event.hash)
        .execute(&mut **transaction)
        .await?;
    Ok(sealed)
}

// Signed checkpoints in the table `audit_checkpoint` (see the migration `20261207000000_audit_checkpoint`).

/// The chain of the checkpoints that [`drop_partitions_before`] signs.
pub const RETENTION_CHAIN: &str = "retention";

/// The chain of the checkpoints that [`seal_postgres_streams`] signs.
pub const STREAMS_CHAIN: &str = "streams";

/// Inserts checkpoints of one chain (`$1`), from arrays of their index, stream, sequence number and JSON.
const INSERT_CHECKPOINTS: &str = "INSERT INTO audit_checkpoint (chain, checkpoint_index, stream, sequence, checkpoint) \
     SELECT $1, * FROM UNNEST($2::int8[], $3::text[], $4::int8[], $5::text[])";

/// The last checkpoint of a chain (`$1`).
const LAST_CHECKPOINT: &str =
    "SELECT checkpoint FROM audit_checkpoint WHERE chain = $1 ORDER BY checkpoint_index DESC LIMIT 1";

/// The statement inserting `checkpoints` into `chain`.
fn insert_checkpoints<'q>(chain: &'q str, checkpoints: &[Checkpoint]) -> Result<PgQuery<'q>, String> {
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for checkpoint in checkpoints {
        let index = i64::try_from(checkpoint.index).map_err(|_| "checkpoint index out of range".to_owned())?;
        let sequence = checkpoint.sequence.map(i64::try_from).transpose().map_err(|_| "sequence out of range")?;
        columns.0.push(index);
        columns.1.push(checkpoint.stream.clone());
        columns.2.push(sequence);
        columns.3.push(checkpoint.json());
    }
    Ok(sqlx::query(INSERT_CHECKPOINTS).bind(chain).bind(columns.0).bind(columns.1).bind(columns.2).bind(columns.3))
}

/// The last checkpoint of `chain` in the table.
async fn last_checkpoint(connection: &mut PgConnection, chain: &str) -> Result<Option<Checkpoint>, sqlx::Error> {
    let json: Option<String> = sqlx::query_scalar(LAST_CHECKPOINT).bind(chain).fetch_optional(&mut *connection).await?;
    json.map(|json| {
        serde_json::from_str(&json)
            .map_err(|error| sqlx::Error::Decode(format!("audit_checkpoint, chain {chain}: {error}").into()))
    })
    .transpose()
}

/// What a checkpoint signed in a transaction seals: a stream and its head, why, what policy removed.
type ToSeal = (String, Option<(u64, String)>, CheckpointReason, Vec<Removed>);

/// Signs a checkpoint for each of `seals`, in order, as the next ones of `chain`, and inserts them in
/// `transaction`: they commit with what they record, or not at all. The chain is locked first (an advisory
/// lock, held until the transaction ends), so that signers sharing it, in any process, take turns.
async fn append_signed(
    transaction: &mut PgConnection,
    key: &AuditSigningKey,
    chain: &str,
    seals: Vec<ToSeal>,
) -> Result<Vec<Checkpoint>, sqlx::Error> {
    lock_chain(transaction, chain).await?;
    let mut place = Checkpoint::next_place(last_checkpoint(transaction, chain).await?.as_ref());
    let mut signed = Vec::with_capacity(seals.len());
    for (stream, head, reason, removed) in seals {
        let head = head.as_ref().map(|(sequence, hash)| CheckpointHead { stream: &stream, sequence: *sequence, hash });
        let checkpoint = Checkpoint::sign(key, place, &stream, head, reason, removed);
        place = (checkpoint.index + 1, checkpoint.hash());
        signed.push(checkpoint);
    }
    if !signed.is_empty() {
        insert_checkpoints(chain, &signed)
            .map_err(|message| sqlx::Error::Encode(message.into()))?
            .execute(&mut *transaction)
            .await?;
    }
    Ok(signed)
}

/// Locks `chain` until the transaction ends.
async fn lock_chain(transaction: &mut PgConnection, chain: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('hardened audit checkpoint chain ' || $1, 0))")
        .bind(chain)
        .execute(&mut *transaction)
        .await
        .map(drop)
}

/// Signs a checkpoint of the head of each of `streams` that moved since the last checkpoint sealing it,
/// into the chain [`STREAMS_CHAIN`] of the table `audit_checkpoint`, and returns them: how the streams of
/// [`write_in_tx`] and [`write_in_tx_to`], which the pipeline does not write, are sealed.
///
/// Call it as the pipeline signs its own streams: every N records or T seconds (a task on an interval),
/// and at shutdown; the records of a stream written after its last checkpoint are the ones a verifier
/// reports as not sealed, and could be cut or rewritten undetected. It reads each head as the table holds
/// it, so it seals what was committed: a record rewritten before it runs is sealed as rewritten. One
/// transaction, one round trip per query, no work per record; callers in several processes take turns.
/// Needs `SELECT` on `audit_stream_head` and `SELECT, INSERT` on `audit_checkpoint` (the writer's grants).
///
/// ```no_run
/// # async fn seal(pool: &sqlx::PgPool, key: &hardened::audit::AuditSigningKey) -> Result<(), sqlx::Error> {
/// use hardened::audit::{seal_postgres_streams, tx_stream};
///
/// let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
/// loop {
///     every.tick().await;
///     seal_postgres_streams(pool, key, &[&tx_stream()]).await?;
/// }
/// # }
/// ```
pub async fn seal_postgres_streams(
    pool: &PgPool,
    key: &AuditSigningKey,
    streams: &[&str],
) -> Result<Vec<Checkpoint>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    // Locked before the heads are read, so that callers at once do not both sign the same head.
    lock_chain(&mut transaction, STREAMS_CHAIN).await?;
    let heads: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT head.stream, head.sequence, head.hash FROM audit_stream_head AS head \
         WHERE head.stream = ANY($1) AND head.sequence >= 0 AND NOT EXISTS (SELECT 1 FROM audit_checkpoint AS sealed \
             WHERE sealed.stream = head.stream AND sealed.sequence >= head.sequence) \
         ORDER BY head.stream",
    )
    .bind(streams)
    .fetch_all(&mut *transaction)
    .await?;
    let seals = heads
        .into_iter()
        .filter_map(|(stream, sequence, hash)| {
            let sequence = u64::try_from(sequence).ok()?;
            Some((stream, Some((sequence, hash)), CheckpointReason::Flush, Vec::new()))
        })
        .collect();
    let signed = append_signed(&mut transaction, key, STREAMS_CHAIN, seals).await?;
    transaction.commit().await?;
    Ok(signed)
}

/// The stream [`write_in_tx`] writes to: `<service name>/tx`.
#[must_use]
pub fn tx_stream() -> String {
    format!("{}/tx", super::service_name())
}

/// Checkpoints in the table `audit_checkpoint`, in a chain of their own: the default destination of the
/// checkpoints of a pipeline writing to a [`PostgresSink`] (the chain is then the pipeline's stream).
///
/// A thread of its own, with its own connection, inserts them, so that the audit writer never waits on the
/// database for a checkpoint: [`write`](CheckpointSink::write) hands a checkpoint over, and the thread
/// commits it without waiting for the WAL flush; [`sync`](CheckpointSink::sync) (at each flush) waits until
/// every checkpoint handed over is committed and durable, or says why one is not. A checkpoint that could not be inserted stays queued, in order, and goes with the
/// next one, so the chain in the table never has a hole. The primary key `(chain, checkpoint_index)`
/// refuses a second writer of the same chain.
pub struct CheckpointTable {
    name: String,
    chain: String,
    /// Where it connects, until its thread takes it.
    connector: Option<Connector>,
    commands: Option<std::sync::mpsc::Sender<TableCommand>>,
}

impl fmt::Debug for CheckpointTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointTable")
            .field("name", &self.name)
            .field("chain", &self.chain)
            .field("connector", &self.connector)
            .field("started", &self.commands.is_some())
            .finish()
    }
}

enum TableCommand {
    Last(std::sync::mpsc::Sender<Result<Option<Checkpoint>, String>>),
    Write(Box<Checkpoint>),
    Sync(std::sync::mpsc::Sender<Result<(), String>>),
}

impl CheckpointTable {
    /// Checkpoints in the chain `chain` of the table, connecting with `options` (on first use).
    #[must_use]
    pub fn new(options: PgConnectOptions, chain: &str) -> CheckpointTable {
        CheckpointTable::with_connector(Connector::new(options), chain)
    }

    fn with_connector(mut connector: Connector, chain: &str) -> CheckpointTable {
        // Committed without waiting for the WAL flush, and made durable together at `sync` (each flush), as
        // a checkpoint file is fsynced: a checkpoint costs the server no flush of its own.
        connector.options = connector.options.clone().options([("synchronous_commit", "off")]);
        CheckpointTable {
            name: format!("audit_checkpoint:{chain}"),
            chain: chain.to_owned(),
            connector: Some(connector),
            commands: None,
        }
    }

    /// Finds the table in `schema` (see [`postgres_in_schema`]), created if missing.
    #[must_use]
    pub fn schema(mut self, schema: &str) -> CheckpointTable {
        if let Some(connector) = &mut self.connector {
            connector.schema(schema);
        }
        self
    }

    /// Sends `command` to the thread, started on first use.
    fn send(&mut self, command: TableCommand) -> std::io::Result<()> {
        if self.commands.is_none() {
            let connector =
                self.connector.take().ok_or_else(|| std::io::Error::other("the checkpoint thread stopped"))?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (sender, receiver) = std::sync::mpsc::channel();
            let chain = self.chain.clone();
            std::thread::Builder::new()
                .name("hardened-audit-checkpoints".to_owned())
                .spawn(move || run_checkpoint_table(&runtime, connector, &chain, &receiver))?;
            self.commands = Some(sender);
        }
        let commands = self.commands.as_ref().expect("started above");
        commands.send(command).map_err(|_| std::io::Error::other("the checkpoint thread stopped"))
    }

    /// Sends a command that answers, and waits for its answer.
    fn ask<T>(
        &mut self,
        command: impl FnOnce(std::sync::mpsc::Sender<Result<T, String>>) -> TableCommand,
    ) -> std::io::Result<T> {
        let (sender, receiver) = std::sync::mpsc::channel();
        self.send(command(sender))?;
        receiver
            .recv()
            .map_err(|_| std::io::Error::other("the checkpoint thread stopped"))?
            .map_err(std::io::Error::other)
    }
}

impl CheckpointSink for CheckpointTable {
    fn name(&self) -> &str {
        &self.name
    }

    fn last(&mut self) -> std::io::Result<Option<Checkpoint>> {
        self.ask(TableCommand::Last)
    }

    fn write(&mut self, checkpoint: &Checkpoint) -> std::io::Result<()> {
        self.send(TableCommand::Write(Box::new(checkpoint.clone())))
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.ask(TableCommand::Sync)
    }
}

/// Makes the checkpoints committed on this connection durable: a commit that waits for the WAL flush, which
/// flushes every commit before it.
const DURABLE: &str = "BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT";

/// What the thread of a [`CheckpointTable`] holds.
struct TableState {
    connector: Connector,
    /// Checkpoints handed over and not inserted yet, in order.
    queued: Vec<Checkpoint>,
    /// Checkpoints inserted (committed without waiting for the WAL flush) since the last durable flush.
    unflushed: Vec<Checkpoint>,
    /// Whether the connection failed since those were inserted: they may be lost with a server crash.
    reconnected: bool,
}

impl TableState {
    fn failed(&mut self, error: &str) -> String {
        self.connector.reset();
        self.reconnected = true;
        error.to_owned()
    }

    /// Inserts the checkpoints queued, in one statement; on an error they stay queued. After a failure, the
    /// checkpoints inserted but not yet durable that the table lacks (lost with a server crash) go first,
    /// so that the chain in the table never has a hole.
    async fn insert_queued(&mut self, chain: &str) -> Result<(), String> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let inserted = async {
            let connection = self.connector.connection().await?;
            if self.reconnected {
                let last = last_checkpoint(connection, chain).await.map_err(|error| error.to_string())?;
                let last = last.map(|last| last.index);
                self.unflushed.retain(|checkpoint| last.is_none_or(|last| checkpoint.index > last));
                self.queued.splice(0..0, self.unflushed.drain(..));
                self.reconnected = false;
            }
            let query = insert_checkpoints(chain, &self.queued)?;
            query.execute(connection).await.map_err(|error| error.to_string())
        }
        .await;
        match inserted {
            Ok(_) => {
                self.unflushed.append(&mut self.queued);
                Ok(())
            }
            Err(error) => {
                let error = self.failed(&error);
                tracing::error!(chain, queued = self.queued.len(), %error, "audit checkpoints not inserted yet");
                Err(format!("{} checkpoints of chain {chain} not inserted: {error}", self.queued.len()))
            }
        }
    }

    /// Inserts what is queued and makes every checkpoint inserted durable.
    async fn sync(&mut self, chain: &str) -> Result<(), String> {
        self.insert_queued(chain).await?;
        if self.unflushed.is_empty() {
            return Ok(());
        }
        let flushed = async {
            let connection = self.connector.connection().await?;
            sqlx::raw_sql(DURABLE).execute(connection).await.map_err(|error| error.to_string())
        }
        .await;
        match flushed {
            Ok(_) => {
                self.unflushed.clear();
                Ok(())
            }
            Err(error) => Err(format!("checkpoints of chain {chain} not made durable: {}", self.failed(&error))),
        }
    }
}

/// The thread of a [`CheckpointTable`]: runs its commands until the table is dropped, then inserts what
/// is still queued.
fn run_checkpoint_table(
    runtime: &tokio::runtime::Runtime,
    connector: Connector,
    chain: &str,
    commands: &std::sync::mpsc::Receiver<TableCommand>,
) {
    let mut state = TableState { connector, queued: Vec::new(), unflushed: Vec::new(), reconnected: false };
    while let Ok(command) = commands.recv() {
        match command {
            TableCommand::Last(reply) => {
                let last = runtime.block_on(async {
                    let connection = state.connector.connection().await?;
                    last_checkpoint(connection, chain).await.map_err(|error| error.to_string())
                });
                let _ = reply.send(last.map_err(|error| state.failed(&error)));
            }
            TableCommand::Write(checkpoint) => {
                state.queued.push(*checkpoint);
                // Logged there; `sync` reports it to the writer.
                let _ = runtime.block_on(state.insert_queued(chain));
            }
            TableCommand::Sync(reply) => {
                let _ = reply.send(runtime.block_on(state.sync(chain)));
            }
        }
    }
    let _ = runtime.block_on(state.sync(chain));
}

/// Verifies one stream of the audit table: every row intact, the sequence unbroken and linked by hash from
/// record 0, and the stream reaching the head its writers recorded. Records that retention removed (see
/// [`drop_partitions_before`]) may be missing, and only they: where the stream starts after record 0 or
/// skips records, a record of the drop must cover exactly the records missing, and link by hash to the
/// records on either side.
///
/// Reads the rows in pages, in one snapshot: memory does not grow with the table, and rows written during
/// the verification are not seen.
///
/// The chain alone proves the table consistent, not authentic: the owner of the tables can turn the
/// triggers off and rewrite it, recomputing every hash. [`verify_postgres_with`] also checks it against
/// the signed checkpoints.
pub async fn verify_postgres(pool: &PgPool, stream: &str) -> Result<Verification, sqlx::Error> {
    verify(pool, Some(stream), None).await
}

/// Verifies every stream of the audit table, as [`verify_postgres`] does one, including streams whose head
/// is recorded but none of whose rows remain.
pub async fn verify_postgres_all(pool: &PgPool) -> Result<Verification, sqlx::Error> {
    verify(pool, None, None).await
}

/// Verifies one stream of the audit table as [`verify_postgres`] does and, given public keys, against the
/// signed checkpoints of the table `audit_checkpoint` (every chain in it) and of the file
/// [`VerifyOptions::checkpoint_file`] names, if any (a pipeline's `checkpoint_file`), as
/// [`verify_jsonl_with`](super::verify_jsonl_with) checks a JSONL log:
///
/// - every checkpoint is signed by one of the keys and in place in its checkpoint chain;
/// - a row at a sequence number a checkpoint sealed has the hash sealed ([`ChainProblem::Rewritten`]): a
///   record rewritten with every later hash and the head recomputed fails here;
/// - the table reaches the last record each stream's checkpoints seal, present or removed by retention
///   ([`ChainProblem::CutEnd`]);
/// - every stream has a checkpoint ([`ChainProblem::Unsealed`]): the streams written by [`write_in_tx`] get
///   theirs from [`seal_postgres_streams`];
/// - records are missing by policy only where a signed `retention` checkpoint of
///   [`drop_partitions_before`] lists them ([`ChainProblem::Missing`] otherwise): the unsigned tables
///   `audit_retention` and `audit_retention_stream` excuse nothing here, since whoever cut the records
///   could have written them.
///
/// The counts of records sealed and not yet sealed are in the [`Verification`]. Without keys in the
/// options, this is [`verify_postgres`].
///
/// Fails with [`sqlx::Error::Io`] when the checkpoint file given cannot be read.
pub async fn verify_postgres_with(
    pool: &PgPool,
    stream: &str,
    options: &VerifyOptions,
) -> Result<Verification, sqlx::Error> {
    verify_sealed(pool, Some(stream), options).await
}

/// Verifies every stream of the audit table as [`verify_postgres_with`] does one.
///
/// ```no_run
/// # async fn check(pool: &sqlx::PgPool, key: hardened::audit::AuditPublicKey) -> Result<(), sqlx::Error> {
/// use hardened::audit::{VerifyOptions, verify_postgres_all_with};
///
/// // The checkpoints in the table `audit_checkpoint`; add `.checkpoint_file(path)` for a pipeline that wrote
/// // its checkpoints to a file.
/// let options = VerifyOptions::new().public_key(key);
/// let verification = verify_postgres_all_with(pool, &options).await?;
/// assert!(verification.is_intact(), "{:?}", verification.problem);
/// # Ok(())
/// # }
/// ```
pub async fn verify_postgres_all_with(pool: &PgPool, options: &VerifyOptions) -> Result<Verification, sqlx::Error> {
    verify_sealed(pool, None, options).await
}

async fn verify_sealed(
    pool: &PgPool,
    only: Option<&str>,
    options: &VerifyOptions,
) -> Result<Verification, sqlx::Error> {
    verify(pool, only, Some(options).filter(|options| !options.public_keys().is_empty())).await
}

/// The signed checkpoints of `options`' file, if it names one, and of the table `audit_checkpoint`, each
/// verified with `options`' keys: the check, or what is wrong with a checkpoint.
async fn read_seals(
    transaction: &mut Transaction<'_, Postgres>,
    options: &VerifyOptions,
) -> Result<Result<SealCheck, ChainProblem>, sqlx::Error> {
    let keys = options.public_keys();
    let mut seals = Seals::default();
    if let Some(file) = options.given_checkpoint_file()
        && let Err(problem) = seals.read(file, keys)?
    {
        return Ok(Err(problem));
    }
    let table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('audit_checkpoint')::text").fetch_one(&mut **transaction).await?;
    if table.is_some() {
        let mut after = (String::new(), -1_i64);
        loop {
            let rows: Vec<(String, i64, String)> = sqlx::query_as(
                "SELECT chain, checkpoint_index, checkpoint FROM audit_checkpoint \
                 WHERE (chain, checkpoint_index) > ($1, $2) ORDER BY chain, checkpoint_index LIMIT $3",
            )
            .bind(&after.0)
            .bind(after.1)
            .bind(PAGE)
            .fetch_all(&mut **transaction)
            .await?;
            let full = rows.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
            for (chain, index, json) in rows {
                let location = format!("audit_checkpoint, chain {chain}, checkpoint #{index}");
                let added = serde_json::from_str::<Checkpoint>(&json)
                    .map_err(|error| format!("not a checkpoint: {error}"))
                    .and_then(|checkpoint| seals.add(&chain, checkpoint, keys));
                if let Err(reason) = added {
                    return Ok(Err(ChainProblem::Checkpoint { location, reason }));
                }
                after = (chain, index);
            }
            if !full {
                break;
            }
        }
    }
    Ok(Ok(SealCheck::new(seals)))
}

async fn verify(pool: &PgPool, only: Option<&str>, keyed: Option<&VerifyOptions>) -> Result<Verification, sqlx::Error> {
    let mut transaction = pool.begin_with(BEGIN_SNAPSHOT).await?;
    let (removed, seals) = match keyed {
        None => (removed_runs(&mut transaction, only).await?, None),
        Some(options) => match read_seals(&mut transaction, options).await? {
            // With keys, records are missing by policy only where a signed retention checkpoint says so: the
            // unsigned `audit_retention` tables could have been written by whoever cut them.
            Ok(mut seals) => (seals.take_removed_runs(), Some(seals)),
            Err(problem) => {
                transaction.rollback().await?;
                return Ok(ChainVerifier::default().finish(Some(problem), None));
            }
        },
    };
    let mut streams = StreamsCheck::new(&removed, seals);
    let mut after = (only.unwrap_or_default().to_owned(), -1_i64);
    loop {
        let page = match only {
            Some(stream) => sqlx::query(PAGE_OF_STREAM).bind(stream).bind(after.1),
            None => sqlx::query(PAGE_OF_ALL).bind(&after.0).bind(after.1),
        };
        let rows = page.bind(PAGE).fetch_all(&mut *transaction).await?;
        let Some(last) = rows.last() else { break };
        after = (last.try_get("stream")?, last.try_get("sequence")?);
        let full = rows.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
        for row in rows {
            let id: uuid::Uuid = row.try_get("id")?;
            let location = || format!("audit_log row {id}");
            let problem = match event_from_row(&row)? {
                Ok(event) => streams.push(event, &location).err(),
                Err(reason) => Some(ChainProblem::Malformed { location: location(), reason }),
            };
            if problem.is_some() {
                // Ended now, not when the connection is next used: its snapshot holds locks meanwhile.
                transaction.rollback().await?;
                return Ok(streams.finish(problem));
            }
        }
        if !full {
            break;
        }
    }
    if let Err(problem) = streams.end_stream() {
        transaction.rollback().await?;
        return Ok(streams.finish(Some(problem)));
    }
    let heads: Vec<(String, i64)> = match only {
        Some(stream) => {
            sqlx::query_as("SELECT stream, sequence FROM audit_stream_head WHERE stream = $1")
                .bind(stream)
                .fetch_all(&mut *transaction)
                .await?
        }
        None => {
            sqlx::query_as("SELECT stream, sequence FROM audit_stream_head ORDER BY stream")
                .fetch_all(&mut *transaction)
                .await?
        }
    };
    transaction.commit().await?;
    let problem = heads
        .into_iter()
        .filter_map(|(stream, head)| Some((stream, u64::try_from(head).ok()?)))
        .find_map(|(stream, head)| streams.check_head(&stream, head).err())
        .or_else(|| streams.check_seals_end(only).err());
    Ok(streams.finish(problem))
}

/// Records removed by policy from `from` on: the last one of the runs that follow each other from `from`,
/// linked by hash, with the hash before the first and the hash of the last.
struct Covered<'a> {
    through: u64,
    before: &'a str,
    last_hash: &'a str,
}

fn covered(runs: Option<&[RemovedRun]>, from: u64) -> Option<Covered<'_>> {
    let runs = runs?;
    let start = runs.iter().position(|run| run.first_sequence == from)?;
    let first = &runs[start];
    let mut covered =
        Covered { through: first.last_sequence, before: &first.first_prev_hash, last_hash: &first.last_hash };
    for run in &runs[start + 1..] {
        if Some(run.first_sequence) != covered.through.checked_add(1) || run.first_prev_hash != covered.last_hash {
            break;
        }
        covered.through = run.last_sequence;
        covered.last_hash = &run.last_hash;
    }
    Some(covered)
}

/// The runs of records removed by policy as the unsigned table `audit_retention_stream` has them, by
/// stream, in sequence order (none before the migration that introduced retention): what a verification
/// without keys accepts as missing.
async fn removed_runs(
    transaction: &mut Transaction<'_, Postgres>,
    only: Option<&str>,
) -> Result<HashMap<String, Vec<RemovedRun>>, sqlx::Error> {
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('audit_retention_stream')::text").fetch_one(&mut **transaction).await?;
    let mut removed = HashMap::<String, Vec<RemovedRun>>::new();
    if recorded.is_none() {
        return Ok(removed);
    }
    let rows: Vec<(String, i64, String, i64, String)> = sqlx::query_as(
        "SELECT stream, first_sequence, first_prev_hash, last_sequence, last_hash FROM audit_retention_stream \
         WHERE $1::text IS NULL OR stream = $1 ORDER BY stream, first_sequence",
    )
    .bind(only)
    .fetch_all(&mut **transaction)
    .await?;
    for (stream, first, first_prev_hash, last, last_hash) in rows {
        let sequence = |value: i64| {
            u64::try_from(value).map_err(|_| {
                sqlx::Error::Decode(format!("audit_retention_stream: negative sequence number {value}").into())
            })
        };
        let run =
            RemovedRun { first_sequence: sequence(first)?, first_prev_hash, last_sequence: sequence(last)?, last_hash };
        removed.entry(stream).or_default().push(run);
    }
    Ok(removed)
}

/// Checks the streams of `audit_log` read in (stream, sequence) order, with the gaps that retention recorded:
/// each stream's chain in a [`ChainVerifier`], and a new one after each gap the records of a drop cover.
struct StreamsCheck<'a> {
    removed: &'a HashMap<String, Vec<RemovedRun>>,
    /// The signed checkpoints, given public keys.
    seals: Option<SealCheck>,
    current: Option<StreamCheck>,
    /// For each stream checked, the last record accounted for: present, or removed by policy.
    reached: HashMap<String, i128>,
    records: u64,
}

/// The stream being checked.
struct StreamCheck {
    stream: String,
    verifier: ChainVerifier,
    /// The sequence number that comes next.
    next: u64,
    /// The hash of the last record.
    last_hash: String,
}

impl StreamsCheck<'_> {
    fn new(removed: &HashMap<String, Vec<RemovedRun>>, seals: Option<SealCheck>) -> StreamsCheck<'_> {
        StreamsCheck { removed, seals, current: None, reached: HashMap::new(), records: 0 }
    }

    fn runs(&self, stream: &str) -> Option<&[RemovedRun]> {
        self.removed.get(stream).map(Vec::as_slice)
    }

    /// Checks the next record.
    fn push(&mut self, event: AuditEvent, location: &impl Fn() -> Location) -> Result<(), ChainProblem> {
        self.records += 1;
        if self.current.as_ref().is_none_or(|current| current.stream != event.stream) {
            self.end_stream()?;
            self.current = Some(StreamCheck {
                stream: event.stream.clone(),
                verifier: ChainVerifier::default(),
                next: 0,
                last_hash: GENESIS_HASH.to_owned(),
            });
        }
        let current = self.current.as_mut().expect("set above");
        if event.sequence > current.next
            && let Some(covered) = covered(self.removed.get(&event.stream).map(Vec::as_slice), current.next)
        {
            let (expected, found) = (covered.through + 1, event.sequence);
            if expected > found {
                // Present, though recorded as removed.
                return Err(ChainProblem::Reordered { location: location(), stream: event.stream, expected, found });
            }
            if expected < found {
                return Err(ChainProblem::Missing { location: location(), stream: event.stream, expected, found });
            }
            if covered.before != current.last_hash {
                return Err(ChainProblem::BrokenLink {
                    location: format!("audit_retention_stream, records {}..={}", current.next, covered.through),
                    stream: event.stream,
                    sequence: current.next,
                });
            }
            let sealed = SealedEvent::verified(event, location)?;
            let event = sealed.event();
            if event.prev_hash != covered.last_hash {
                return Err(ChainProblem::BrokenLink {
                    location: location(),
                    stream: event.stream.clone(),
                    sequence: event.sequence,
                });
            }
            // The records before were removed by policy: the chain goes on from this record, as checked.
            current.verifier.end()?;
            current.verifier = ChainVerifier::default();
            return Self::take(current, self.seals.as_mut(), event.clone(), location, true);
        }
        Self::take(current, self.seals.as_mut(), event, location, false)
    }

    fn take(
        current: &mut StreamCheck,
        seals: Option<&mut SealCheck>,
        event: AuditEvent,
        location: &impl Fn() -> Location,
        may_start_late: bool,
    ) -> Result<(), ChainProblem> {
        let sealed = current.verifier.push(event, location, may_start_late)?;
        if let Some(seals) = seals {
            seals.check(sealed.event(), location)?;
        }
        current.next = current.next.max(sealed.event().sequence + 1);
        current.last_hash.clone_from(&sealed.event().hash);
        Ok(())
    }

    /// The end of the stream being checked: a skip that no later record explained is a gap, and records
    /// removed by policy after its last record count as reached.
    fn end_stream(&mut self) -> Result<(), ChainProblem> {
        let Some(mut current) = self.current.take() else { return Ok(()) };
        current.verifier.end()?;
        let mut reached = i128::from(current.next) - 1;
        if let Some(covered) = covered(self.runs(&current.stream), current.next)
            && covered.before == current.last_hash
        {
            reached = i128::from(covered.through);
        }
        self.reached.insert(current.stream, reached);
        Ok(())
    }

    /// The last record of `stream` accounted for once every stream is checked: present, or removed by
    /// policy (-1 for none).
    fn last_reached(&self, stream: &str) -> i128 {
        self.reached.get(stream).copied().unwrap_or_else(|| {
            covered(self.runs(stream), 0)
                .filter(|covered| covered.before == GENESIS_HASH)
                .map_or(-1, |covered| i128::from(covered.through))
        })
    }

    /// Checks that `stream` reaches at least record `head`, as its writer recorded: present, or removed by
    /// policy.
    fn check_head(&self, stream: &str, head: u64) -> Result<(), ChainProblem> {
        let last = self.last_reached(stream);
        if last < i128::from(head) {
            return Err(ChainProblem::Truncated { stream: stream.to_owned(), last, head });
        }
        Ok(())
    }

    /// Checks, given checkpoints, that each stream (`only` that one) reaches the last record they seal, and
    /// that every stream has one.
    fn check_seals_end(&self, only: Option<&str>) -> Result<(), ChainProblem> {
        let Some(seals) = &self.seals else { return Ok(()) };
        // Verifying one stream, the checkpoints of the others are not its to reach.
        seals.check_end(|stream| match only {
            Some(only) if only != stream => i128::MAX,
            _ => self.last_reached(stream),
        })
    }

    /// The verification so far.
    fn finish(&self, problem: Option<ChainProblem>) -> Verification {
        let mut verification = ChainVerifier::default().finish(problem, None);
        verification.records = self.records;
        verification.streams = self.reached.len() + usize::from(self.current.is_some());
        if let Some(seals) = &self.seals {
            seals.count_into(&mut verification);
        }
        verification
    }
}

/// A run of consecutive records of a stream that retention removed with the month partition that held them,
/// as the table `audit_retention_stream` has it.
///
/// A plain record: who may write the retention tables may also rewrite it. The verification with keys reads
/// the signed `retention` checkpoints instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedByPolicy {
    /// The stream.
    pub stream: String,
    /// The first record removed.
    pub first_sequence: u64,
    /// The `prev_hash` of the first record removed: the hash of the record before it.
    pub first_prev_hash: String,
    /// The last record removed.
    pub last_sequence: u64,
    /// The hash of the last record removed, which the record after it links to.
    pub last_hash: String,
    /// The first record of the stream left after the drop, if any was.
    pub first_kept: Option<u64>,
    /// The partition dropped.
    pub partition: String,
    /// The month it held, in UTC.
    pub month: Range<DateTime<Utc>>,
    /// When it was dropped.
    pub dropped_at: DateTime<Utc>,
    /// Why, as given to [`drop_partitions_before`].
    pub reason: String,
}

/// The records retention removed, of `stream` or of every stream, by stream then sequence: what
/// [`verify_postgres`] accepts as missing.
pub async fn removed_by_policy(pool: &PgPool, stream: Option<&str>) -> Result<Vec<RemovedByPolicy>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.stream, s.first_sequence, s.first_prev_hash, s.last_sequence, s.last_hash, s.first_kept, \
         r.partition, r.range_from, r.range_to, r.dropped_at, r.reason \
         FROM audit_retention_stream AS s JOIN audit_retention AS r USING (drop_id) \
         WHERE $1::text IS NULL OR s.stream = $1 ORDER BY s.stream, s.first_sequence",
    )
    .bind(stream)
    .fetch_all(pool)
    .await?;
    let sequence = |value: i64| {
        u64::try_from(value).map_err(|_| {
            sqlx::Error::Decode(format!("audit_retention_stream: negative sequence number {value}").into())
        })
    };
    rows.iter()
        .map(|row| {
            Ok(RemovedByPolicy {
                stream: row.try_get("stream")?,
                first_sequence: sequence(row.try_get("first_sequence")?)?,
                first_prev_hash: row.try_get("first_prev_hash")?,
                last_sequence: sequence(row.try_get("last_sequence")?)?,
                last_hash: row.try_get("last_hash")?,
                first_kept: row.try_get::<Option<i64>, _>("first_kept")?.map(sequence).transpose()?,
                partition: row.try_get("partition")?,
                month: row.try_get("range_from")?..row.try_get("range_to")?,
                dropped_at: row.try_get("dropped_at")?,
                reason: row.try_get("reason")?,
            })
        })
        .collect()
}

/// A month partition of `audit_log` that [`drop_partitions_before`] dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedPartition {
    /// Its name, `audit_log_YYYY_MM`.
    pub partition: String,
    /// The month it held, in UTC.
    pub month: Range<DateTime<Utc>>,
    /// The records it held.
    pub records: u64,
}

/// Drops every month partition of `audit_log` that ends at or before `before`, oldest first, in one
/// transaction: the only way records leave the audit trail. Each drop is recorded first, with `reason`,
/// in `audit_retention` (the partition, its month, its record count, when, why) and `audit_retention_stream`
/// (for each stream, each run of consecutive records removed, with the hash before it and its last hash,
/// and the first record kept), which [`verify_postgres`] reads to accept those records, and only those, as
/// missing.
///
/// With `signing_key` (the audit signing key, as the pipeline's), each drop is also a signed `retention`
/// checkpoint listing those runs ([`Removed`] with a [`RemovedRun`]), in the chain [`RETENTION_CHAIN`] of
/// the table `audit_checkpoint`, inserted in the same transaction: the verification with keys
/// ([`verify_postgres_with`]) accepts records as missing only where such a checkpoint says so, since the
/// unsigned tables can be written by whoever cut the records. Without a key, a verification with keys
/// reports the records dropped as cut.
///
/// Run it as the role that owns the audit tables: dropping a partition takes its ownership, which the
/// writer's role does not have. Writers wait while it runs (it locks `audit_log`). Refused for a month that
/// has not ended (`before` after the start of the current month in UTC) and without a reason.
///
/// ```no_run
/// # async fn retention(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
/// use chrono::{Months, Utc};
///
/// // Keep thirteen months.
/// let before = Utc::now().checked_sub_months(Months::new(13)).expect("a representable date");
/// let key = hardened::audit::AuditSigningKey::read_pem_file("/run/secrets/audit-signing.pem").expect("the key");
/// let reason = "retention policy: 13 months";
/// for dropped in hardened::audit::drop_partitions_before(pool, before, reason, Some(&key)).await? {
///     println!("{}: {} records", dropped.partition, dropped.records);
/// }
/// # Ok(())
/// # }
/// ```
pub async fn drop_partitions_before(
    pool: &PgPool,
    before: DateTime<Utc>,
    reason: &str,
    signing_key: Option<&AuditSigningKey>,
) -> Result<Vec<DroppedPartition>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let mut last_drop = 0_i64;
    if signing_key.is_some() {
        // Locked as the function locks it, but before looking at the drops made so far: none commits between.
        sqlx::query("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE").execute(&mut *transaction).await?;
        last_drop = sqlx::query_scalar("SELECT coalesce(max(drop_id), 0) FROM audit_retention")
            .fetch_one(&mut *transaction)
            .await?;
    }
    let rows: Vec<(String, DateTime<Utc>, DateTime<Utc>, i64)> =
        sqlx::query_as("SELECT * FROM audit_log_drop_partitions_before($1, $2)")
            .bind(before)
            .bind(reason)
            .fetch_all(&mut *transaction)
            .await?;
    if let Some(key) = signing_key {
        let seals = retention_seals(&mut transaction, last_drop).await?;
        append_signed(&mut transaction, key, RETENTION_CHAIN, seals).await?;
    }
    transaction.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(partition, from, to, records)| DroppedPartition {
            partition,
            month: from..to,
            records: u64::try_from(records).unwrap_or_default(),
        })
        .collect())
}

/// What each drop after `last_drop` removed, as the `retention` checkpoint that records it: one per drop.
async fn retention_seals(
    transaction: &mut Transaction<'_, Postgres>,
    last_drop: i64,
) -> Result<Vec<ToSeal>, sqlx::Error> {
    let drops: Vec<i64> = sqlx::query_scalar("SELECT drop_id FROM audit_retention WHERE drop_id > $1 ORDER BY drop_id")
        .bind(last_drop)
        .fetch_all(&mut **transaction)
        .await?;
    let runs: Vec<(i64, String, i64, String, i64, String)> = sqlx::query_as(
        "SELECT drop_id, stream, first_sequence, first_prev_hash, last_sequence, last_hash \
         FROM audit_retention_stream WHERE drop_id > $1 ORDER BY drop_id, stream, first_sequence",
    )
    .bind(last_drop)
    .fetch_all(&mut **transaction)
    .await?;
    let sequence = |value: i64| {
        u64::try_from(value).map_err(|_| {
            sqlx::Error::Decode(format!("audit_retention_stream: negative sequence number {value}").into())
        })
    };
    let mut removed = BTreeMap::<i64, Vec<Removed>>::new();
    for (drop_id, stream, first, first_prev_hash, last, last_hash) in runs {
        let (first_sequence, last_sequence) = (sequence(first)?, sequence(last)?);
        let run = RemovedRun { first_sequence, first_prev_hash, last_sequence, last_hash };
        removed.entry(drop_id).or_default().push(Removed { stream, first_kept: last_sequence + 1, run: Some(run) });
    }
    Ok(drops
        .into_iter()
        .map(|drop_id| (String::new(), None, CheckpointReason::Retention, removed.remove(&drop_id).unwrap_or_default()))
        .collect())
}

/// An event from a row of [`select_columns`], or why the row is not one.
fn event_from_row(row: &PgRow) -> Result<Result<AuditEvent, String>, sqlx::Error> {
    let details: String = row.try_get("details")?;
    let details = match serde_json::from_str::<serde_json::Value>(&details) {
        Ok(serde_json::Value::Object(details)) => details,
        Ok(_) => return Ok(Err("details is not a JSON object".to_owned())),
        Err(error) => return Ok(Err(format!("details: {error}"))),
    };
    let outcome: String = row.try_get("outcome")?;
    let Some(outcome) = AuditOutcome::ALL.into_iter().find(|known| known.as_str() == outcome) else {
        return Ok(Err(format!("unknown outcome `{outcome}`")));
    };
    let ip_address = match row.try_get::<Option<String>, _>("ip_address")? {
        None => None,
        Some(text) => match text.parse() {
            Ok(ip) => Some(ip),
            Err(error) => return Ok(Err(format!("ip_address `{text}`: {error}"))),
        },
    };
    let sequence: i64 = row.try_get("sequence")?;
    let Ok(sequence) = u64::try_from(sequence) else {
        return Ok(Err(format!("negative sequence number {sequence}")));
    };
    let event_type: String = row.try_get("event_type")?;
    Ok(Ok(AuditEvent {
        id: row.try_get("id")?,
        timestamp: row.try_get("timestamp")?,
        event_type: EventType::named(event_type),
        service: row.try_get("service")?,
        user_id: row.try_get("user_id")?,
        session_id: row.try_get("session_id")?,
        ip_address,
        resource: row.try_get("resource")?,
        details,
        outcome,
        outcome_details: row.try_get("outcome_details")?,
        trace_id: row.try_get("trace_id")?,
        span_id: row.try_get("span_id")?,
        stream: row.try_get("stream")?,
        sequence,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    }))
}
