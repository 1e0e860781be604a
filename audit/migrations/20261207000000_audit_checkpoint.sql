-- Signed checkpoints kept beside the records they seal: the default destination of a `PostgresSink`'s
-- checkpoints, and where retention drops and the streams of transactional writes are sealed.
--
-- Each signer writes a chain of its own (`chain`: a pipeline's stream, `retention`, `streams`), numbered
-- from 0 and linked by the hash of the checkpoint before; the primary key refuses a second checkpoint at
-- the same place in a chain, so that two signers can never fork one. `checkpoint` is the checkpoint as
-- the JSON line that was signed; `stream` and `sequence` repeat what it seals, for look-ups only (a
-- verifier reads the JSON). Append-only, like `audit_log`: no row is ever updated or deleted.
CREATE TABLE audit_checkpoint (
    chain            text        NOT NULL,
    checkpoint_index bigint      NOT NULL CHECK (checkpoint_index >= 0),
    stream           text        NOT NULL,
    sequence         bigint,
    checkpoint       text        NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, checkpoint_index)
);

-- Which records of a stream are sealed already (what `seal_postgres_streams` looks up).
CREATE INDEX audit_checkpoint_stream ON audit_checkpoint (stream, sequence);

CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_rewrite('signed checkpoints are kept for good');
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_rewrite('signed checkpoints are kept for good');
