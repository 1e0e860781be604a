-- The audit trail of `hardened` (feature `postgres`): one row per audit event, and the head of each hash
-- chain. Created in the first schema of the connection's search path.

CREATE TABLE audit_log (
    id              uuid        PRIMARY KEY,
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
    -- Also the index a verifier reads a stream by.
    UNIQUE (stream, sequence)
);

-- Every index costs each insert an entry: these are the ones the security report and the usual look-ups
-- (a time range, an event type, a user, a session) use, each covering what its queries read.

-- Time ranges; covering the columns the security report counts by, so that its totals are an index-only scan.
CREATE INDEX audit_log_timestamp ON audit_log ("timestamp") INCLUDE (event_type, outcome);
-- One event type over time; covering the tool and the outcome, so that the security report's tool calls
-- (`ToolExecution`) are an index-only scan.
CREATE INDEX audit_log_event_type ON audit_log (event_type, "timestamp") INCLUDE (outcome, resource);
-- One user's or one session's events over time; events without one are not indexed (`user_id = $1`
-- implies `user_id IS NOT NULL`, so such queries use them).
CREATE INDEX audit_log_user_id ON audit_log (user_id, "timestamp") WHERE user_id IS NOT NULL;
CREATE INDEX audit_log_session_id ON audit_log (session_id, "timestamp") WHERE session_id IS NOT NULL;
-- The security report: failed authentications over a time range in timestamp order, with the user and the
-- address, so that finding bursts per subject is an index-only scan and no sort.
CREATE INDEX audit_log_failed_authentication ON audit_log ("timestamp") INCLUDE (user_id, ip_address)
    WHERE event_type = 'AuthenticationAttempt' AND outcome = 'Failure';

-- The last record of each stream as its writer recorded it, written in the same transaction as the record:
-- a verifier compares it with the last row present to detect a log whose end was deleted.
CREATE TABLE audit_stream_head (
    stream   text   PRIMARY KEY,
    sequence bigint NOT NULL,
    hash     text   NOT NULL
);
