//! Reading audit files back is reading outside data: whatever bytes the log, its head file and its
//! checkpoint file hold, the reader and the verifier answer without panicking, and a line longer than
//! `MAX_LINE_BYTES` is reported as not a record without being held in memory.

use std::fs;
use std::path::Path;

use hardened::audit::{
    AuditEvent, AuditSigningKey, Auditor, ChainProblem, EventType, JsonlRecord, JsonlSink, MAX_LINE_BYTES,
    VerifyOptions, read_jsonl, verify_jsonl, verify_jsonl_with,
};
use proptest::prelude::*;

fn signing_key() -> &'static AuditSigningKey {
    static KEY: std::sync::OnceLock<AuditSigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| AuditSigningKey::generate().expect("a new key"))
}

/// Reads and verifies the log at `path` every way there is; only I/O errors may come back as errors.
fn read_every_way(path: &Path) {
    for record in read_jsonl(path) {
        let _ = record.expect("the files are readable");
    }
    let _ = verify_jsonl(path).expect("the files are readable");
    let options = VerifyOptions::new().public_key(signing_key().public_key());
    let _ = verify_jsonl_with(path, &options).expect("the files are readable");
}

/// Bytes that look like JSONL more often than uniform bytes would: many newlines and braces.
fn jsonl_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            1 => Just(b'\n'),
            1 => Just(b'{'),
            1 => Just(b'}'),
            1 => Just(b'"'),
        ],
        0..512,
    )
}

/// A real signed log, its lines, and its checkpoint file, written once.
fn signed_log() -> &'static (Vec<u8>, Vec<u8>) {
    static LOG: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("audit.jsonl");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let auditor = Auditor::builder()
                .sink(JsonlSink::open(&path).expect("the log opens"))
                .spill_dir(directory.path().join("spill"))
                .signing_key(signing_key().clone())
                .checkpoint_every(4, std::time::Duration::from_hours(1))
                .start()
                .expect("the pipeline starts");
            for n in 0..12 {
                auditor.emit(AuditEvent::new(EventType::ToolExecution).user_id("ada").detail("n", n));
            }
            auditor.shutdown().await.expect("written");
        });
        let log = fs::read(&path).expect("the log");
        let checkpoints = fs::read(directory.path().join("audit.jsonl.checkpoints")).expect("the checkpoints");
        (log, checkpoints)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_files_are_read_and_verified_without_a_panic(
        log in jsonl_like(),
        head in jsonl_like(),
        checkpoints in jsonl_like(),
        rotated in jsonl_like(),
    ) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("audit.jsonl");
        fs::write(&path, &log).expect("writable");
        fs::write(directory.path().join("audit.jsonl.1"), &rotated).expect("writable");
        fs::write(directory.path().join("audit.jsonl.checkpoints"), &checkpoints).expect("writable");
        if !head.is_empty() {
            fs::write(directory.path().join("audit.jsonl.head"), &head).expect("writable");
        }
        for record in read_jsonl(&path) {
            let _ = record.expect("the files are readable");
        }
        // A head file that is not one is an error of its own; everything else is a verification.
        let _ = verify_jsonl(&path);
        let options = VerifyOptions::new().public_key(signing_key().public_key());
        let _ = verify_jsonl_with(&path, &options);
    }

    #[test]
    fn a_signed_log_with_any_byte_changed_is_verified_without_a_panic(
        in_log in any::<bool>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let (log, checkpoints) = signed_log();
        let (mut log, mut checkpoints) = (log.clone(), checkpoints.clone());
        let target = if in_log { &mut log } else { &mut checkpoints };
        let index = at.index(target.len());
        target[index] = byte;
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("audit.jsonl");
        fs::write(&path, &log).expect("writable");
        fs::write(directory.path().join("audit.jsonl.checkpoints"), &checkpoints).expect("writable");
        read_every_way(&path);
    }
}

#[test]
fn a_line_longer_than_the_bound_is_reported_and_not_held() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("audit.jsonl");
    let mut log = vec![b'x'; MAX_LINE_BYTES + 10];
    log.push(b'\n');
    fs::write(&path, &log).expect("writable");

    let records: Vec<JsonlRecord> = read_jsonl(&path).map(|record| record.expect("readable")).collect();
    assert!(
        matches!(&records[..], [JsonlRecord::Malformed(location, reason)]
            if location.line == 1 && reason.contains(&format!("a line of {} bytes", MAX_LINE_BYTES + 11))),
        "{records:?}"
    );
    let problem = verify_jsonl(&path).expect("readable").problem.expect("not a record");
    assert!(matches!(problem, ChainProblem::Malformed { .. }), "{problem:?}");
}
