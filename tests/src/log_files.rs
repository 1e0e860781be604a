//! Audit logs for tests: the event the JSONL tests and their writer processes write, and a log's lines
//! read and written back whole, as a forger with write access to the file would.

use std::fs;
use std::path::Path;

use hardened::audit::{AuditEvent, EventType};

/// Every line of the file at `path`.
///
/// # Panics
///
/// When the file cannot be read.
#[must_use]
pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path).expect("the file is readable").lines().map(str::to_owned).collect()
}

/// Replaces the file at `path` with `lines`, each ending in a newline.
///
/// # Panics
///
/// When the file cannot be written.
pub fn rewrite(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(path, text).expect("the file is writable");
}

/// The `n`-th event of the JSONL tests and of the writer processes they start: a `search` tool call.
#[must_use]
pub fn search_event(n: usize) -> AuditEvent {
    AuditEvent::new(EventType::ToolExecution).resource("search").detail("n", n).detail("query", format!("q{n}"))
}
