//! Signed checkpoints: the forgeries an insider who can write the log (but not read the signing key)
//! would try, each performed here and each caught by `verify_jsonl_with` and the public key, while the
//! unkeyed chain alone lets it pass; key rotation, a wrong key, a tampered checkpoint; the checkpoint
//! interval in records and in time; the overflow spill file's authentication; the files' modes.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hardened::audit::{
    AuditEvent, AuditPublicKey, AuditSigningKey, Auditor, AuditorBuilder, ChainProblem, Checkpoint, CheckpointReason,
    EventType, JsonlSink, MemorySink, Verification, VerifyOptions, verify_jsonl, verify_jsonl_with,
};
use hardened::clock::Clock;
use hardened_tests::log_files::{lines, rewrite};
use hardened_tests::sample;
use sha2::{Digest, Sha256};

fn event(n: usize) -> AuditEvent {
    AuditEvent::new(EventType::ToolExecution).user_id("ada").resource("search").detail("n", n)
}

fn key() -> AuditSigningKey {
    AuditSigningKey::generate().expect("a new key")
}

fn signed(directory: &Path, path: &Path, key: &AuditSigningKey) -> AuditorBuilder {
    Auditor::builder()
        .sink(JsonlSink::open(path).expect("the log opens"))
        .spill_dir(directory.join("spill"))
        .batch_size(64)
        .signing_key(key.clone())
        .checkpoint_every(100, Duration::from_hours(1))
}

/// Writes `count` events through a pipeline signing with `key`, then shuts it down.
async fn write_signed(directory: &Path, path: &Path, key: &AuditSigningKey, count: usize) {
    let auditor = signed(directory, path, key).start().expect("the pipeline starts");
    for n in 0..count {
        auditor.emit(event(n));
    }
    auditor.shutdown().await.expect("every event is written");
}

fn with_key(key: &AuditSigningKey) -> VerifyOptions {
    VerifyOptions::new().public_key(key.public_key())
}

fn verify(path: &Path, key: &AuditSigningKey) -> Verification {
    verify_jsonl_with(path, &with_key(key)).expect("the log is readable")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{suffix}", path.display()))
}

fn checkpoints(path: &Path) -> Vec<Checkpoint> {
    lines(&sibling(path, "checkpoints")).iter().map(|line| serde_json::from_str(line).expect("a checkpoint")).collect()
}

/// The forger: whoever can write the log rewrites a record and recomputes, as the writer would, the
/// hash of every record from there on and the head file. The canonical JSON of a record is its line
/// without the trailing `"hash"` key, so the hash is recomputed from the text.
fn forge(path: &Path, edit_line: usize, edit: impl Fn(&str) -> String) {
    use std::fmt::Write as _;

    let mut lines = lines(path);
    let mut prev_hash = String::new();
    for line in &mut lines[edit_line..] {
        let hash_at = line.rfind(r#","hash":""#).expect("a record ends with its hash");
        let mut canonical = format!("{}}}", &line[..hash_at]);
        if prev_hash.is_empty() {
            canonical = edit(&canonical);
        } else {
            let prev_at = canonical.find(r#""prev_hash":""#).expect("a record links to the one before") + 13;
            canonical.replace_range(prev_at..prev_at + 64, &prev_hash);
        }
        prev_hash.clear();
        for byte in Sha256::digest(canonical.as_bytes()) {
            let _ = write!(prev_hash, "{byte:02x}");
        }
        canonical.pop();
        *line = format!(r#"{canonical},"hash":"{prev_hash}"}}"#);
    }
    rewrite(path, &lines);
    let last: serde_json::Value = serde_json::from_str(lines.last().expect("a record")).expect("a record");
    let head = serde_json::json!({"stream": last["stream"], "sequence": last["sequence"], "hash": last["hash"]});
    fs::write(sibling(path, "head"), head.to_string()).expect("the head file is writable");
}

#[tokio::test]
async fn a_signed_log_verifies_with_its_public_key_and_every_record_is_sealed() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    write_signed(directory.path(), &path, &key, 250).await;

    let verification = verify(&path, &key);
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.sealed, verification.unsealed), (250, 250, 0));
    let checkpoints = checkpoints(&path);
    let reasons: Vec<(CheckpointReason, Option<u64>)> =
        checkpoints.iter().map(|checkpoint| (checkpoint.reason, checkpoint.sequence)).collect();
    assert_eq!(
        reasons,
        [
            (CheckpointReason::Start, None),
            (CheckpointReason::Interval, Some(99)),
            (CheckpointReason::Interval, Some(199)),
            (CheckpointReason::Shutdown, Some(249)),
        ]
    );
    assert_eq!(verification.checkpoints, 4);
    assert!(checkpoints.iter().all(|checkpoint| checkpoint.key_id == key.key_id()));
    assert!(checkpoints.iter().all(|checkpoint| checkpoint.is_signed_by(&key.public_key())));
}

#[tokio::test]
async fn an_edited_user_id_with_every_later_hash_and_the_head_recomputed_fails_with_the_key() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    write_signed(directory.path(), &path, &key, 250).await;

    forge(&path, 10, |record| record.replace(r#""user_id":"ada""#, r#""user_id":"mallory""#));

    // The chain alone cannot tell: the forger recomputed it.
    assert!(verify_jsonl(&path).expect("the log is readable").is_intact());
    let verification = verify(&path, &key);
    let problem = verification.problem.expect("the forgery is found");
    assert!(matches!(&problem, ChainProblem::Rewritten { sequence: 99, checkpoint: 1, .. }), "{problem:?}");
    let message = problem.to_string();
    assert!(message.contains("record 99") && message.contains("rewritten"), "{message}");
}

#[tokio::test]
async fn a_deleted_end_with_its_head_file_removed_fails_with_the_key() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    write_signed(directory.path(), &path, &key, 250).await;

    let mut kept = lines(&path);
    kept.truncate(245);
    rewrite(&path, &kept);
    fs::remove_file(sibling(&path, "head")).expect("the head file is there");

    assert!(verify_jsonl(&path).expect("the log is readable").is_intact());
    let problem = verify(&path, &key).problem.expect("the cut end is found");
    assert!(matches!(&problem, ChainProblem::CutEnd { last: 244, sealed: 249, checkpoint: 3, .. }), "{problem:?}");
    assert!(problem.to_string().contains("the end was removed"), "{problem}");
}

/// Writes a log that rotates: `keep` rotated files of about 10 records each.
async fn write_rotating(directory: &Path, path: &Path, key: &AuditSigningKey, keep: usize, count: usize) {
    let auditor = Auditor::builder()
        .sink(JsonlSink::open(path).expect("the log opens").max_bytes(4_000).keep(keep))
        .spill_dir(directory.join("spill"))
        .batch_size(16)
        .signing_key(key.clone())
        .checkpoint_every(50, Duration::from_hours(1))
        .start()
        .expect("the pipeline starts");
    for n in 0..count {
        auditor.emit(event(n));
    }
    auditor.shutdown().await.expect("every event is written");
}

#[tokio::test]
async fn dropping_the_first_records_of_the_oldest_file_fails_with_the_key() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    // Ten files kept: nothing is deleted by retention.
    write_rotating(directory.path(), &path, &key, 10, 40).await;
    let oldest = (1..=10).map(|index| sibling(&path, &index.to_string())).rfind(|file| file.exists()).expect("rotated");
    assert!(verify(&path, &key).is_intact());

    let mut kept = lines(&oldest);
    kept.drain(..5);
    rewrite(&oldest, &kept);

    // Without the key, a stream may start late in the oldest file: records rotated out look the same.
    assert!(verify_jsonl(&path).expect("the log is readable").is_intact());
    let problem = verify(&path, &key).problem.expect("the cut beginning is found");
    assert!(matches!(&problem, ChainProblem::Cut { expected: 0, found: 5, .. }), "{problem:?}");
    assert!(problem.to_string().contains("they were cut"), "{problem}");
}

#[tokio::test]
async fn files_deleted_by_retention_are_recorded_and_the_log_verifies_but_a_cut_beyond_them_does_not() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    write_rotating(directory.path(), &path, &key, 2, 200).await;

    let retention: Vec<Checkpoint> =
        checkpoints(&path).into_iter().filter(|checkpoint| checkpoint.reason == CheckpointReason::Retention).collect();
    assert!(!retention.is_empty(), "rotation with two files kept deleted some");
    let first_kept = retention.last().expect("one").removed[0].first_kept;
    let verification = verify(&path, &key);
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 200 - first_kept);

    let oldest = sibling(&path, "2");
    let mut kept = lines(&oldest);
    kept.drain(..3);
    rewrite(&oldest, &kept);
    let problem = verify(&path, &key).problem.expect("the cut is found");
    assert!(
        matches!(&problem, ChainProblem::Cut { expected, found, .. } if *expected == first_kept && *found == first_kept + 3),
        "{problem:?}"
    );
}

#[tokio::test]
async fn records_after_the_last_checkpoint_are_reported_as_unsealed() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    write_signed(directory.path(), &path, &key, 250).await;
    // As after a crash: the shutdown checkpoint was never written. Records 200..249 are not sealed, so
    // cutting them would go unnoticed: the window the checkpoint interval bounds.
    let mut checkpoint_lines = lines(&sibling(&path, "checkpoints"));
    checkpoint_lines.pop();
    rewrite(&sibling(&path, "checkpoints"), &checkpoint_lines);

    let verification = verify(&path, &key);
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.sealed, verification.unsealed), (200, 50));
}

#[tokio::test]
async fn a_log_signed_by_a_key_and_its_successor_verifies_with_both_public_keys_only() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let (old, new) = (key(), key());
    write_signed(directory.path(), &path, &old, 120).await;
    write_signed(directory.path(), &path, &new, 80).await;

    let both = VerifyOptions::new().public_key(old.public_key()).public_key(new.public_key());
    let verification = verify_jsonl_with(&path, &both).expect("the log is readable");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.streams, verification.sealed), (200, 2, 200));

    let problem = verify(&path, &new).problem.expect("the old key's checkpoints do not verify with the new key");
    let message = problem.to_string();
    assert!(message.contains(old.key_id()) && message.contains("not among the public keys given"), "{message}");
}

#[tokio::test]
async fn a_wrong_public_key_fails() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    write_signed(directory.path(), &path, &key(), 20).await;

    let problem = verify(&path, &key()).problem.expect("another key verifies nothing");
    assert!(matches!(&problem, ChainProblem::Checkpoint { .. }), "{problem:?}");
    assert!(problem.to_string().contains("not among the public keys given"), "{problem}");
}

#[tokio::test]
async fn a_tampered_checkpoint_fails() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    write_signed(directory.path(), &path, &key, 250).await;
    let file = sibling(&path, "checkpoints");
    let original = lines(&file);

    // A forger who rewrote the log points a checkpoint at the forged record's hash.
    let mut edited = original.clone();
    let mut checkpoint: Checkpoint = serde_json::from_str(&edited[1]).expect("a checkpoint");
    checkpoint.hash = Some("0".repeat(64));
    edited[1] = checkpoint.json();
    rewrite(&file, &edited);
    let problem = verify(&path, &key).problem.expect("the edited checkpoint is found");
    assert!(problem.to_string().contains("the signature of checkpoint #1 does not verify"), "{problem}");

    // Or removes one.
    let mut removed = original.clone();
    removed.remove(2);
    rewrite(&file, &removed);
    let problem = verify(&path, &key).problem.expect("the removed checkpoint is found");
    assert!(problem.to_string().contains("checkpoint #3 where #2 should come next"), "{problem}");

    // Or removes them all.
    fs::remove_file(&file).expect("the checkpoint file is there");
    let problem = verify(&path, &key).problem.expect("a log without checkpoints is not sealed");
    assert!(matches!(&problem, ChainProblem::Unsealed { records: 250, .. }), "{problem:?}");
}

#[tokio::test]
async fn a_checkpoint_is_signed_when_the_interval_has_passed_on_the_pipelines_clock() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    let (clock, manual) = Clock::manual();
    let auditor = Auditor::builder()
        .sink(JsonlSink::open(&path).expect("the log opens"))
        .spill_dir(directory.path().join("spill"))
        .batch_interval(Duration::from_millis(1))
        .signing_key(key.clone())
        .checkpoint_every(1_000_000, Duration::from_mins(1))
        .clock(clock)
        .start()
        .expect("the pipeline starts");
    let written = |count: usize| {
        let path = path.clone();
        async move {
            while fs::read_to_string(&path).map_or(0, |text| text.lines().count()) < count {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };

    for n in 0..5 {
        auditor.emit(event(n));
    }
    written(5).await;
    manual.advance(Duration::from_secs(59));
    auditor.emit(event(5));
    written(6).await;
    assert_eq!(checkpoints(&path).len(), 1, "only the start checkpoint before the interval has passed");

    manual.advance(Duration::from_secs(1));
    auditor.emit(event(6));
    written(7).await;
    let sealed = loop {
        let checkpoints = checkpoints(&path);
        if checkpoints.len() > 1 {
            break checkpoints;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!((sealed[1].reason, sealed[1].sequence), (CheckpointReason::Interval, Some(6)));
    auditor.shutdown().await.expect("every event is written");
}

#[tokio::test]
async fn a_line_injected_into_the_spill_folder_is_not_written_as_a_record() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    let spill = directory.path().join("spill");
    fs::create_dir_all(&spill).expect("the spill folder");
    let forged = serde_json::to_string(&event(0).user_id("mallory")).expect("an event serializes");
    let tagged = format!("{} {forged}", "ab".repeat(32));
    fs::write(spill.join("overflow.jsonl"), format!("{forged}\n{tagged}\n")).expect("the spill file is writable");
    let rejected_before =
        sample("hardened_audit_events_total", &[("sink", "queue"), ("result", "rejected")]).unwrap_or_default();

    write_signed(directory.path(), &path, &key, 10).await;

    let log = fs::read_to_string(&path).expect("the log is readable");
    assert!(!log.contains("mallory"), "an injected event was chained as a record");
    assert_eq!(log.lines().count(), 10);
    let quarantine = fs::read_to_string(spill.join("quarantine.jsonl")).expect("the refused lines are kept");
    assert_eq!(quarantine.lines().count(), 2);
    let rejected =
        sample("hardened_audit_events_total", &[("sink", "queue"), ("result", "rejected")]).unwrap_or_default();
    assert!(rejected >= rejected_before + 2, "rejected lines are counted: {rejected_before} then {rejected}");
    assert!(verify(&path, &key).is_intact());
}

#[tokio::test]
async fn events_that_overflow_the_queue_of_a_signing_pipeline_are_written() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let key = key();
    let auditor = signed(directory.path(), &path, &key).queue_capacity(1).start().expect("the pipeline starts");
    for n in 0..2_000 {
        auditor.emit(event(n));
    }
    auditor.shutdown().await.expect("every event is written");

    let verification = verify(&path, &key);
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 2_000);
    assert!(!directory.path().join("spill/quarantine.jsonl").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn audit_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let mode = |path: &Path| fs::metadata(path).expect("the file exists").permissions().mode() & 0o777;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let audit = directory.path().join("audit");
    let path = audit.join("audit.jsonl");
    let key = key();
    let failing = MemorySink::new();
    failing.set_failing(true);
    let auditor = Auditor::builder()
        .sink(JsonlSink::open(&path).expect("the log opens").max_bytes(4_000).keep(3))
        .sink(failing.clone())
        .spill_dir(audit.join("spill"))
        .retries(1, Duration::from_millis(1), Duration::from_millis(1))
        .signing_key(key.clone())
        .start()
        .expect("the pipeline starts");
    for n in 0..50 {
        auditor.emit(event(n));
    }
    let _ = auditor.flush().await;

    assert_eq!(mode(&audit), 0o700, "the log's folder");
    assert_eq!(mode(&audit.join("spill")), 0o700, "the spill folder");
    for file in [
        path.clone(),
        sibling(&path, "1"),
        sibling(&path, "head"),
        sibling(&path, "checkpoints"),
        audit.join("spill/.lock"),
        audit.join("spill/memory.backlog.jsonl"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    let secret = directory.path().join("signing.pem");
    key.write_pem_file(&secret).expect("the key is written");
    assert_eq!(mode(&secret), 0o600, "the signing key");
    assert_eq!(AuditSigningKey::read_pem_file(&secret).expect("it reads back").key_id(), key.key_id());
    let public = directory.path().join("signing.pub.pem");
    key.public_key().write_pem_file(&public).expect("the public key is written");
    assert_eq!(AuditPublicKey::read_pem_file(&public).expect("it reads back"), key.public_key());
    failing.set_failing(false);
    auditor.shutdown().await.expect("the sink recovered");
}

#[test]
fn a_pipeline_with_a_key_and_no_checkpoint_file_does_not_start() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let error = Auditor::builder()
        .sink(MemorySink::new())
        .spill_dir(directory.path().join("spill"))
        .signing_key(key())
        .start()
        .expect_err("nowhere to put checkpoints");
    assert!(error.to_string().contains("AuditorBuilder::checkpoint_file"), "{error}");
}

#[tokio::test]
async fn the_head_file_is_compared_by_hash_not_only_by_sequence_number() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    write_signed(directory.path(), &path, &key(), 20).await;
    let head = fs::read(sibling(&path, "head")).expect("the writer left a head file");

    // The last record rewritten with its hash recomputed, the head file left as the writer wrote it.
    forge(&path, 19, |record| record.replace(r#""user_id":"ada""#, r#""user_id":"mallory""#));
    fs::write(sibling(&path, "head"), head).expect("the head file is writable");

    let problem = verify_jsonl(&path).expect("the log is readable").problem.expect("the head names another record");
    assert!(matches!(&problem, ChainProblem::HeadMismatch { sequence: 19, .. }), "{problem:?}");
    assert!(problem.to_string().contains("is not the record the head file names"), "{problem}");
}
