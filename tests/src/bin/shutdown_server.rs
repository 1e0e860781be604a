//! A service for the shutdown tests, run as a child process and stopped with real signals.
//!
//! It serves `GET /work`, a `#[hardened(audit)]` call that holds until the file `RELEASE_FILE` exists,
//! and the ops router; it audits to `AUDIT_PATH` and registers three shutdown handlers: `first`,
//! `hangs` (never finishes; cut at `HANG_TIMEOUT_MS`) and `last`. It prints `listening <port>` once it
//! accepts connections and signals, and one `handler <name> <outcome>` line per handler and a
//! `clean <bool>` line when its shutdown ends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use hardened::audit::{self, Auditor, JsonlSink};
use hardened::hardened;
use hardened::shutdown::{self, HandlerOutcome, ShutdownConfig, priority};

#[derive(Debug, thiserror::Error)]
enum WorkError {
    #[error(transparent)]
    Rejected(#[from] hardened::Rejected),
}

#[hardened(kind = "tool", audit)]
async fn work(release: &Path) -> Result<&'static str, WorkError> {
    while !release.exists() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok("done")
}

async fn work_route(State(release): State<PathBuf>) -> &'static str {
    work(&release).await.unwrap_or("refused")
}

fn millis(variable: &str, default: u64) -> Duration {
    let value = std::env::var(variable).ok().and_then(|value| value.parse().ok()).unwrap_or(default);
    Duration::from_millis(value)
}

fn path(variable: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(|| panic!("{variable} names a file"), PathBuf::from)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let sink = JsonlSink::open(path("AUDIT_PATH"))?;
    let spill = path("AUDIT_PATH").with_extension("spill");
    let auditor = Auditor::builder().sink(sink).spill_dir(spill).start().map_err(std::io::Error::other)?;
    audit::install(auditor).map_err(|_| std::io::Error::other("an auditor was installed already"))?;

    shutdown::register("first", priority::APPLICATION, Duration::from_secs(1), || async { Ok(()) });
    shutdown::register("hangs", priority::APPLICATION + 1, millis("HANG_TIMEOUT_MS", 300), || async {
        std::future::pending::<()>().await;
        Ok(())
    });
    shutdown::register("last", priority::TELEMETRY + 1, Duration::from_secs(1), || async { Ok(()) });

    let app = Router::new()
        .route("/work", get(work_route))
        .with_state(path("RELEASE_FILE"))
        .merge(hardened::http::ops_router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    // Before the port is announced: a signal sent as soon as it is would otherwise meet the default action
    // and kill the process. `Server::run` listens too; the second call does nothing.
    shutdown::listen_for_signals();
    println!("listening {}", listener.local_addr()?.port());

    let config = ShutdownConfig {
        pre_stop_delay: millis("PRE_STOP_MS", 1_000),
        drain_timeout: millis("DRAIN_MS", 10_000),
        deadline: millis("DEADLINE_MS", 20_000),
    };
    let summary = hardened::http::Server::new(app).shutdown(config).run(listener).await?;
    for handler in &summary.handlers {
        let outcome = match handler.outcome {
            HandlerOutcome::Done => "done",
            HandlerOutcome::Failed(_) => "failed",
            HandlerOutcome::TimedOut => "timed-out",
            HandlerOutcome::NotStarted => "not-started",
        };
        println!("handler {} {outcome}", handler.name);
    }
    println!("drained {}", summary.drained);
    println!("clean {}", summary.is_clean());
    Ok(())
}
