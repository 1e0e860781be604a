//! The JSONL sink and its verifier: records as written, rotation, concurrent writers, and every kind
//! of tampering detected: an edit, a deletion, a reordering, a truncated end, a torn last line.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hardened::audit::{AuditEvent, Auditor, ChainProblem, EventType, JsonlRecord, JsonlSink, read_jsonl, verify_jsonl};
use hardened_tests::log_files::{lines, rewrite, search_event as event};

/// Writes `count` events through a pipeline into the JSONL log `sink` and flushes.
async fn write_log(directory: &Path, sink: JsonlSink, count: usize) -> Auditor {
    let auditor = Auditor::builder()
        .sink(sink)
        .spill_dir(directory.join("spill"))
        .batch_size(64)
        .start()
        .expect("the pipeline starts");
    for n in 0..count {
        auditor.emit(event(n));
    }
    auditor.flush().await.expect("every event is written");
    auditor
}

fn log_in(directory: &tempfile::TempDir) -> PathBuf {
    directory.path().join("audit.jsonl")
}

#[tokio::test]
async fn records_holding_any_float_verify() {
    // Floats whose shortest text takes 17 digits read back exactly only with a correctly rounding parser.
    let floats = [0.025_882_000_000_000_002, 0.1 + 0.2, 1e-300, f64::MAX, 123_456.789_012_345_67, 2.0_f64.sqrt()];
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    let auditor = Auditor::builder()
        .sink(JsonlSink::open(&path).expect("the log opens"))
        .spill_dir(directory.path().join("spill"))
        .start()
        .expect("the pipeline starts");
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    for n in 0..200 {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let float = floats.get(n).copied().unwrap_or_else(|| f64::from_bits(random >> 2) / 1e200);
        auditor.emit(AuditEvent::new(EventType::ToolExecution).detail("duration_ms", float));
    }
    auditor.flush().await.expect("every event is written");

    let verification = verify_jsonl(&path).expect("the log is readable");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 200);
}

#[tokio::test]
async fn an_untouched_log_verifies() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    write_log(directory.path(), JsonlSink::open(&path).expect("the log opens"), 100).await;

    let verification = verify_jsonl(&path).expect("the log is readable");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.streams), (100, 1));
    assert_eq!(verification.torn_tail, None);
    let lines = lines(&path);
    assert_eq!(lines.len(), 100);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    assert_eq!(first["sequence"], 0);
    assert_eq!(first["details"]["query"], "q0");
    assert!(
        lines[0].ends_with(&format!(r#","hash":"{}"}}"#, first["hash"].as_str().expect("a string"))),
        "hash is the last key"
    );
}

#[tokio::test]
async fn an_edited_record_is_reported_where_it_is() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    write_log(directory.path(), JsonlSink::open(&path).expect("the log opens"), 20).await;
    let mut lines = lines(&path);
    lines[7] = lines[7].replace(r#""query":"q7""#, r#""query":"q8""#);
    rewrite(&path, &lines);

    let problem = verify_jsonl(&path).expect("the log is readable").problem.expect("a problem is found");
    let ChainProblem::Altered { location, sequence, .. } = problem else { panic!("not an alteration: {problem:?}") };
    assert_eq!(sequence, 7);
    assert!(location.ends_with("audit.jsonl:8"), "{location}");
}

#[tokio::test]
async fn a_deleted_record_is_reported_as_missing() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    write_log(directory.path(), JsonlSink::open(&path).expect("the log opens"), 20).await;
    let mut lines = lines(&path);
    lines.remove(5);
    rewrite(&path, &lines);

    let problem = verify_jsonl(&path).expect("the log is readable").problem.expect("a problem is found");
    let ChainProblem::Missing { expected, found, location, .. } = problem else { panic!("{problem:?}") };
    assert_eq!((expected, found), (5, 6));
    assert!(location.ends_with("audit.jsonl:6"), "{location}");
}

#[tokio::test]
async fn swapped_records_are_reported_as_reordered() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    write_log(directory.path(), JsonlSink::open(&path).expect("the log opens"), 20).await;
    let mut lines = lines(&path);
    lines.swap(10, 11);
    rewrite(&path, &lines);

    let problem = verify_jsonl(&path).expect("the log is readable").problem.expect("a problem is found");
    let ChainProblem::Reordered { expected, found, .. } = problem else { panic!("{problem:?}") };
    assert_eq!((expected, found), (10, 11));
}

#[tokio::test]
async fn a_removed_end_is_reported_as_truncated() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    write_log(directory.path(), JsonlSink::open(&path).expect("the log opens"), 20).await;
    let mut lines = lines(&path);
    lines.truncate(17);
    rewrite(&path, &lines);

    let problem = verify_jsonl(&path).expect("the log is readable").problem.expect("a problem is found");
    assert!(matches!(problem, ChainProblem::Truncated { last: 16, head: 19, .. }), "{problem:?}");
}

#[tokio::test]
async fn a_deleted_first_record_is_found_in_a_log_that_never_rotated() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    write_log(directory.path(), JsonlSink::open(&path).expect("the log opens"), 5).await;
    let mut lines = lines(&path);
    lines.remove(0);
    rewrite(&path, &lines);

    let problem = verify_jsonl(&path).expect("the log is readable").problem.expect("a problem is found");
    assert!(matches!(problem, ChainProblem::Missing { expected: 0, found: 1, .. }), "{problem:?}");
}

#[tokio::test]
async fn rotation_keeps_the_newest_files_and_the_chain_verifies_across_them() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    let sink = JsonlSink::open(&path).expect("the log opens").max_bytes(4 * 1024).keep(3);
    write_log(directory.path(), sink, 200).await;

    let rotated = |index: usize| PathBuf::from(format!("{}.{index}", path.display()));
    for index in 1..=3 {
        assert!(rotated(index).exists(), "{} kept", rotated(index).display());
        assert!(fs::metadata(rotated(index)).expect("the file exists").len() <= 4 * 1024);
    }
    assert!(!rotated(4).exists(), "only three rotated files are kept");
    assert!(fs::metadata(&path).expect("the file exists").len() <= 4 * 1024);

    let sequences: Vec<u64> = read_jsonl(&path)
        .map(|record| match record.expect("the log is readable") {
            JsonlRecord::Event(event, _) => event.sequence,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(*sequences.last().expect("records are read"), 199, "the newest record is in the current file");
    assert!(sequences.windows(2).all(|pair| pair[1] == pair[0] + 1), "oldest first, no gap");
    assert!(sequences[0] > 0, "the oldest records were rotated out");
    let verification = verify_jsonl(&path).expect("the log is readable");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, sequences.len() as u64);
}

#[tokio::test]
async fn a_deletion_inside_a_rotated_file_is_found() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    let sink = JsonlSink::open(&path).expect("the log opens").max_bytes(4 * 1024).keep(3);
    write_log(directory.path(), sink, 100).await;
    let rotated = PathBuf::from(format!("{}.1", path.display()));
    let mut lines = lines(&rotated);
    lines.remove(2);
    rewrite(&rotated, &lines);
    let problem = verify_jsonl(&path).expect("the log is readable").problem.expect("a problem is found");
    assert!(matches!(problem, ChainProblem::Missing { .. }), "{problem:?}");
}

#[tokio::test]
async fn concurrent_writers_lose_nothing_and_keep_one_chain() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    let auditor = Auditor::builder()
        .sink(JsonlSink::open(&path).expect("the log opens"))
        .spill_dir(directory.path().join("spill"))
        .queue_capacity(256)
        .start()
        .expect("the pipeline starts");
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let auditor = auditor.clone();
            std::thread::spawn(move || {
                for n in 0..2_000 {
                    auditor.emit(event(writer * 10_000 + n));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("the writer thread ends");
    }
    auditor.flush().await.expect("every event is written");

    let mut seen: Vec<u64> = read_jsonl(&path)
        .map(|record| match record.expect("the log is readable") {
            JsonlRecord::Event(event, _) => event.details["n"].as_u64().expect("a whole number"),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seen.len(), 16_000);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 16_000, "no duplicates");
    let verification = verify_jsonl(&path).expect("the log is readable");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 16_000);
}

#[test]
fn a_writer_killed_mid_run_leaves_a_log_that_verifies_and_a_torn_line_is_set_aside() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_audit_write_until_killed"))
        .env("AUDIT_LOG", &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the writer process starts");
    // Wait until the writer has flushed at least once, then kill it without warning.
    let head = PathBuf::from(format!("{}.head", path.display()));
    let mut waited = Duration::ZERO;
    while !head.exists() {
        assert!(waited < Duration::from_mins(1), "the writer never flushed");
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    }
    child.kill().expect("the writer process is killed");
    child.wait().expect("the writer process ends");

    let verification = verify_jsonl(&path).expect("the log is readable");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert!(verification.records > 0);

    // A crash may land between a write and the head file that records it: lines past the head are
    // unflushed, and losing them (even half of one) is a crash, not tampering.
    let head: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&head).expect("the head is readable")).expect("the head is JSON");
    let hash = head["hash"].as_str().expect("the head names a hash");
    let mut bytes = fs::read(&path).expect("the file is readable");
    let flushed_end = line_end_holding(&bytes, hash);
    if flushed_end < bytes.len() {
        let unflushed_start = flushed_end;
        let mut torn_unflushed = bytes.clone();
        let next_line_end =
            torn_unflushed[unflushed_start..].iter().position(|byte| *byte == b'\n').expect("an unflushed line ends")
                + 1;
        torn_unflushed.truncate(unflushed_start + next_line_end / 2);
        fs::write(&path, &torn_unflushed).expect("the file is writable");
        let torn = verify_jsonl(&path).expect("the log is readable");
        assert!(torn.torn_tail.is_some(), "the cut line is reported as torn");
        assert!(torn.is_intact(), "a torn unflushed line is a crash: {:?}", torn.problem);
    }

    // Cut the last line the head records in half: a record the writer flushed is gone.
    bytes.truncate(flushed_end);
    let last_line_start = bytes[..bytes.len() - 1].iter().rposition(|byte| *byte == b'\n').map_or(0, |at| at + 1);
    bytes.truncate(last_line_start + (bytes.len() - last_line_start) / 2);
    fs::write(&path, &bytes).expect("the file is writable");
    let torn = verify_jsonl(&path).expect("the log is readable");
    assert!(torn.torn_tail.is_some(), "the cut line is reported as torn");
    assert!(!torn.is_intact(), "the flushed record on the torn line is missing: {:?}", torn.problem);

    // Reopening sets the torn line aside, so the next records start on a line of their own.
    let reopened = JsonlSink::open(&path).expect("the log opens");
    drop(reopened);
    let aside = fs::read_to_string(format!("{}.torn", path.display())).expect("the torn line is set aside");
    assert_eq!(aside.trim_end().len(), bytes.len() - last_line_start);
    assert!(verify_jsonl(&path).expect("the log is readable").torn_tail.is_none());
}

/// The end (past its newline) of the line of `log` that holds the record whose hash is `hash`.
fn line_end_holding(log: &[u8], hash: &str) -> usize {
    let needle = format!("\"hash\":\"{hash}\"");
    let mut start = 0;
    for line in log.split_inclusive(|byte| *byte == b'\n') {
        start += line.len();
        if line.windows(needle.len()).any(|window| window == needle.as_bytes()) {
            return start;
        }
    }
    panic!("no line holds the head's record {hash}")
}

#[tokio::test]
async fn a_log_written_by_two_runs_holds_two_chains_that_both_verify() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    let first = write_log(directory.path(), JsonlSink::open(&path).expect("the log opens"), 30).await;
    first.shutdown().await.expect("the first run stops");
    drop(first);
    let second = write_log(directory.path(), JsonlSink::open(&path).expect("the log opens"), 20).await;
    assert_ne!(second.stream(), "", "each run has a stream of its own");

    let verification = verify_jsonl(&path).expect("the log is readable");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!((verification.records, verification.streams), (50, 2));
}

#[test]
fn the_stdout_sink_prints_a_log_that_verifies() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = log_in(&directory);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_audit_print_to_stdout"))
        .env("AUDIT_SPILL", directory.path().join("spill"))
        .output()
        .expect("the printing process runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let records: Vec<&str> =
        std::str::from_utf8(&output.stdout).expect("UTF-8").lines().filter(|line| line.starts_with('{')).collect();
    assert_eq!(records.len(), 25);
    fs::write(&path, records.join("\n") + "\n").expect("the file is writable");
    let verification = verify_jsonl(&path).expect("the log is readable");
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert_eq!(verification.records, 25);
}
