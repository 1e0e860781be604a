-- The audit trail made append-only, and kept by month.
--
-- `audit_log` becomes a table partitioned by month of `timestamp` (in UTC): one partition per month, named
-- `audit_log_YYYY_MM`, created ahead by `audit_log_create_partitions`, so that old months leave whole, by
-- `audit_log_drop_partitions_before`, which records what each drop removed in `audit_retention` and
-- `audit_retention_stream`. No row of `audit_log` is ever updated or deleted: triggers refuse UPDATE,
-- DELETE and TRUNCATE, for the table owner too; a stream's head in `audit_stream_head` only moves forward.
--
-- A unique constraint of a partitioned table includes its partition key: the primary key is
-- (id, "timestamp"), which a record written again keeps (so replays still conflict and are skipped), and
-- (stream, sequence) is unique within each month's partition, where it is also the verifier's index.

-- Refuses a statement that would rewrite the audit trail. The trigger's argument says what is allowed.
CREATE FUNCTION audit_refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % refused: %', lower(TG_OP), TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- A stream's head moves forward only: to a later record, or stays where it is with the same hash.
CREATE FUNCTION audit_stream_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stream IS DISTINCT FROM OLD.stream THEN
        RAISE EXCEPTION 'update on audit_stream_head refused: the head of stream % cannot become the head of %',
            OLD.stream, NEW.stream USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.sequence < OLD.sequence THEN
        RAISE EXCEPTION 'update on audit_stream_head refused: the head of stream % cannot move back from record % to %; it only moves forward',
            OLD.stream, OLD.sequence, NEW.sequence USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.sequence = OLD.sequence AND NEW.hash IS DISTINCT FROM OLD.hash THEN
        RAISE EXCEPTION 'update on audit_stream_head refused: the hash of record % of stream % cannot change; the head only moves forward',
            OLD.sequence, OLD.stream USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_stream_head_forward_only BEFORE UPDATE ON audit_stream_head
    FOR EACH ROW EXECUTE FUNCTION audit_stream_head_forward_only();
CREATE TRIGGER audit_stream_head_append_only BEFORE DELETE ON audit_stream_head
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_rewrite('a stream''s head only moves forward');
CREATE TRIGGER audit_stream_head_no_truncate BEFORE TRUNCATE ON audit_stream_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_rewrite('a stream''s head only moves forward');

-- The unpartitioned table of the first migration, whose rows move to the partitioned one below. Its
-- indexes are dropped first, so that the new table's take their names.
ALTER TABLE audit_log RENAME TO audit_log_unpartitioned;
ALTER TABLE audit_log_unpartitioned DROP CONSTRAINT audit_log_pkey, DROP CONSTRAINT audit_log_stream_sequence_key;
DROP INDEX audit_log_timestamp, audit_log_event_type, audit_log_user_id, audit_log_session_id,
    audit_log_failed_authentication;

CREATE TABLE audit_log (
    id              uuid        NOT NULL,
    "timestamp"     timestamptz NOT NULL,
    event_type      text        NOT NULL,
    service         text        NOT NULL,
    user_id         text,
    session_id      text,
    ip_address      inet,
    resource        text,
    details         jsonb       NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('Success', 'Failure', 'Denied')),
    outcome_details text,
    trace_id        text,
    span_id         text,
    stream          text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence >= 0),
    prev_hash       text        NOT NULL,
    hash            text        NOT NULL,
    CONSTRAINT audit_log_pkey PRIMARY KEY (id, "timestamp")
) PARTITION BY RANGE ("timestamp");

-- The indexes of the first migration, now one per partition; the reasons for each are given there.
CREATE INDEX audit_log_timestamp ON audit_log ("timestamp") INCLUDE (event_type, outcome);
CREATE INDEX audit_log_event_type ON audit_log (event_type, "timestamp") INCLUDE (outcome, resource);
CREATE INDEX audit_log_user_id ON audit_log (user_id, "timestamp") WHERE user_id IS NOT NULL;
CREATE INDEX audit_log_session_id ON audit_log (session_id, "timestamp") WHERE session_id IS NOT NULL;
CREATE INDEX audit_log_failed_authentication ON audit_log ("timestamp") INCLUDE (user_id, ip_address)
    WHERE event_type = 'AuthenticationAttempt' AND outcome = 'Failure';

-- Row triggers of a partitioned table are copied to every partition, present and future: an UPDATE or a
-- DELETE naming a partition directly is refused too. TRUNCATE triggers are not: each partition gets its own.
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_rewrite(
        'audit records are append-only; whole months leave through audit_log_drop_partitions_before');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_rewrite(
        'audit records are append-only; whole months leave through audit_log_drop_partitions_before');

-- Creates the partition of each month that one of `months` falls in (in UTC), unless it exists: with the
-- unique (stream, sequence) of its month and its TRUNCATE trigger. Runs with its owner's rights (the owner
-- of the audit tables), so that a writer role that may only insert can still open a new month; its search
-- path is fixed to this schema below.
CREATE FUNCTION audit_log_create_partitions(months timestamptz[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    month     timestamp;
    partition text;
    schema    text := current_schema();
BEGIN
    FOR month IN SELECT DISTINCT date_trunc('month', m AT TIME ZONE 'UTC') FROM unnest(months) AS m
        WHERE m IS NOT NULL
    LOOP
        partition := 'audit_log_' || to_char(month, 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('%I.%I', schema, partition)) IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.audit_log FOR VALUES FROM (%L) TO (%L)',
                schema, partition, schema,
                to_char(month, 'YYYY-MM-DD"T"HH24:MI:SS"+00"'),
                to_char(month + interval '1 month', 'YYYY-MM-DD"T"HH24:MI:SS"+00"'));
            EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I UNIQUE (stream, sequence)',
                schema, partition, partition || '_stream_sequence_key');
            EXECUTE format('CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON %I.%I '
                'FOR EACH STATEMENT EXECUTE FUNCTION %I.audit_refuse_rewrite(%L)',
                schema, partition, schema,
                'audit records are append-only; whole months leave through audit_log_drop_partitions_before');
        EXCEPTION WHEN duplicate_table THEN
            -- Made meanwhile by another writer, which went first: the month has its partition.
            NULL;
        END;
    END LOOP;
END
$$;

DO $$
BEGIN
    -- A function running with its owner's rights finds tables through its own search path, never the caller's.
    EXECUTE format('ALTER FUNCTION audit_log_create_partitions(timestamptz[]) SET search_path = %I, pg_temp',
        current_schema());
END
$$;
REVOKE EXECUTE ON FUNCTION audit_log_create_partitions(timestamptz[]) FROM PUBLIC;

-- Every month the existing rows fall in, this month and the next.
SELECT audit_log_create_partitions(
    ARRAY(SELECT DISTINCT date_trunc('month', "timestamp" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
          FROM audit_log_unpartitioned)
        || ARRAY[now(), now() + interval '1 month']);

INSERT INTO audit_log (id, "timestamp", event_type, service, user_id, session_id, ip_address, resource, details,
        outcome, outcome_details, trace_id, span_id, stream, sequence, prev_hash, hash)
    SELECT id, "timestamp", event_type, service, user_id, session_id, ip_address, resource, details, outcome,
        outcome_details, trace_id, span_id, stream, sequence, prev_hash, hash
    FROM audit_log_unpartitioned ORDER BY "timestamp";
DROP TABLE audit_log_unpartitioned;

-- What retention removed: one row per dropped partition, and per stream each run of consecutive records
-- it held (usually one; more where records near the month's end were written out of timestamp order), with
-- the hash before the run and the hash of its last record, so that a verifier can check the records kept
-- against the records removed. Append-only too.
CREATE TABLE audit_retention (
    -- A month dropped can be made again by a late record, and dropped again: a drop has its own id.
    drop_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partition  text        NOT NULL,
    range_from timestamptz NOT NULL,
    range_to   timestamptz NOT NULL,
    records    bigint      NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT now(),
    reason     text        NOT NULL
);

CREATE TABLE audit_retention_stream (
    stream          text   NOT NULL,
    first_sequence  bigint NOT NULL,
    first_prev_hash text   NOT NULL,
    last_sequence   bigint NOT NULL,
    last_hash       text   NOT NULL,
    -- The first record of the stream left after the drop, if any.
    first_kept      bigint,
    drop_id         bigint NOT NULL REFERENCES audit_retention,
    PRIMARY KEY (stream, first_sequence)
);

CREATE TRIGGER audit_retention_append_only BEFORE UPDATE OR DELETE ON audit_retention
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_rewrite('the record of a retention drop is kept for good');
CREATE TRIGGER audit_retention_no_truncate BEFORE TRUNCATE ON audit_retention
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_rewrite('the record of a retention drop is kept for good');
CREATE TRIGGER audit_retention_stream_append_only BEFORE UPDATE OR DELETE ON audit_retention_stream
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_rewrite('the record of a retention drop is kept for good');
CREATE TRIGGER audit_retention_stream_no_truncate BEFORE TRUNCATE ON audit_retention_stream
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_rewrite('the record of a retention drop is kept for good');

-- Drops every month partition that ends at or before `before`, oldest first, after recording in
-- `audit_retention` and `audit_retention_stream` what each held: the only way records leave. Runs with the
-- caller's rights: only the owner of the audit tables may drop a partition.
CREATE FUNCTION audit_log_drop_partitions_before(before timestamptz, reason text)
    RETURNS TABLE (dropped_partition text, month_from timestamptz, month_to timestamptz, removed_records bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    schema    text := current_schema();
    -- Partitions are whole months: those ending at or before `before` end at or before the start of its
    -- month, and every record kept is from that month or later.
    kept_from timestamptz := date_trunc('month', before AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    month     timestamp;
    this_drop bigint;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a retention drop needs a reason: say why these months leave (a policy, a ticket)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF before IS NULL OR before > date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' THEN
        RAISE EXCEPTION 'retention drops only months that have ended: % is after the start of this month', before
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Writers wait until the drop commits; the parent is locked first, as an insert locks it.
    EXECUTE format('LOCK TABLE %I.audit_log IN ACCESS EXCLUSIVE MODE', schema);
    FOR dropped_partition, month IN
        SELECT c.relname::text, to_date(right(c.relname, 7), 'YYYY_MM')::timestamp
        FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = format('%I.audit_log', schema)::regclass
          AND c.relname ~ '^audit_log_[0-9]{4}_[0-9]{2}$'
          AND to_date(right(c.relname, 7), 'YYYY_MM') < kept_from AT TIME ZONE 'UTC'
        ORDER BY 2
    LOOP
        month_from := month AT TIME ZONE 'UTC';
        month_to := (month + interval '1 month') AT TIME ZONE 'UTC';
        EXECUTE format('SELECT count(*) FROM %I.%I', schema, dropped_partition) INTO removed_records;
        INSERT INTO audit_retention (partition, range_from, range_to, records, reason)
            VALUES (dropped_partition, month_from, month_to, removed_records, reason)
            RETURNING audit_retention.drop_id INTO this_drop;
        -- Runs of consecutive records: along a run, the sequence number minus the rank is constant.
        EXECUTE format($query$
            INSERT INTO %1$I.audit_retention_stream
                (stream, first_sequence, first_prev_hash, last_sequence, last_hash, first_kept, drop_id)
            SELECT run.stream, run.first_sequence, run.first_prev_hash, run.last_sequence, run.last_hash,
                (SELECT min(kept.sequence) FROM %1$I.audit_log AS kept
                 WHERE kept.stream = run.stream AND kept."timestamp" >= %3$L::timestamptz),
                %4$L
            FROM (
                SELECT stream, min(sequence) AS first_sequence, max(sequence) AS last_sequence,
                    (array_agg(prev_hash ORDER BY sequence))[1] AS first_prev_hash,
                    (array_agg(hash ORDER BY sequence DESC))[1] AS last_hash
                FROM (SELECT stream, sequence, prev_hash, hash,
                          sequence - row_number() OVER (PARTITION BY stream ORDER BY sequence) AS run
                      FROM %1$I.%2$I) AS numbered
                GROUP BY stream, run
            ) AS run
            $query$, schema, dropped_partition, to_char(kept_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00"'),
            this_drop);
        EXECUTE format('DROP TABLE %I.%I', schema, dropped_partition);
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION audit_log_drop_partitions_before(timestamptz, text) FROM PUBLIC;
