//! `agent-server`: an AI agent HTTP service built on `hardened` the way a team would build one, and the
//! system the load, fault and shutdown evidence is measured on. See this example's README.

use std::process::ExitCode;

/// Every request allocates across threads (audit events are made on the request's thread and freed on the
/// audit writer's), which mimalloc's per-thread free lists serve far faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    agent_server::run()
}
