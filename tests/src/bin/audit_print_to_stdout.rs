//! Writes 25 audit events through the standard output sink, with its spill files in `AUDIT_SPILL`: the
//! process of the JSONL test that reads a log printed to standard output.

use std::path::PathBuf;

use hardened::audit::{Auditor, StdoutSink};
use hardened_tests::log_files::search_event;

fn main() {
    let spill = PathBuf::from(std::env::var_os("AUDIT_SPILL").expect("AUDIT_SPILL names the spill directory"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let auditor = Auditor::builder().sink(StdoutSink).spill_dir(spill).start().expect("the pipeline starts");
        for n in 0..25_usize {
            auditor.emit(search_event(n));
        }
        auditor.flush().await.expect("every event is written");
    });
}
