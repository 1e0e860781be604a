//! Writes audit events to the JSONL log `AUDIT_LOG` and flushes them, 500 at a time, until it is killed:
//! the writer process of the JSONL test of a writer killed mid-run.

use std::path::PathBuf;

use hardened::audit::{Auditor, JsonlSink};
use hardened_tests::log_files::search_event;

fn main() {
    let path = PathBuf::from(std::env::var_os("AUDIT_LOG").expect("AUDIT_LOG names the log"));
    let directory = path.parent().expect("the log is in a directory").to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let auditor = Auditor::builder()
            .sink(JsonlSink::open(&path).expect("the log opens"))
            .spill_dir(directory.join("spill"))
            .batch_size(500)
            .start()
            .expect("the pipeline starts");
        for round in 0_usize.. {
            for n in 0..500 {
                let n = round * 500 + n;
                auditor.emit(search_event(n));
            }
            auditor.flush().await.expect("every event is written");
        }
    });
}
