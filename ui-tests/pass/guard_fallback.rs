//! `fallback = path`: a failed or refused call returns what its fallback makes of the error, sync and
//! async, with the fallback free to pass an error through.
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum PageError {
    #[error(transparent)]
    Refused(#[from] Rejected),
    #[error("upstream failed")]
    Upstream,
    #[error("no such page")]
    NotFound,
}

fn cached(error: PageError) -> Result<String, PageError> {
    match error {
        PageError::NotFound => Err(PageError::NotFound),
        _ => Ok("cached".to_owned()),
    }
}

mod fallbacks {
    pub(crate) fn stale(error: super::PageError) -> Result<String, super::PageError> {
        match error {
            super::PageError::Refused(hardened::Rejected::TimedOut { .. }) => Ok("stale".to_owned()),
            other => Err(other),
        }
    }
}

#[hardened(fallback = cached)]
fn page(path: &str) -> Result<String, PageError> {
    match path {
        "/" => Ok("fresh".to_owned()),
        "/missing" => Err(PageError::NotFound),
        _ => Err(PageError::Upstream),
    }
}

#[hardened(breaker(consecutive_failures = 1), fallback = cached)]
fn guarded_page(runs: &AtomicU32) -> Result<String, PageError> {
    runs.fetch_add(1, Ordering::Relaxed);
    Err(PageError::Upstream)
}

#[hardened(timeout = "10ms", fallback = fallbacks::stale)]
async fn slow_page(delay: Duration) -> Result<String, PageError> {
    tokio::time::sleep(delay).await;
    Ok("fresh".to_owned())
}

fn main() {
    assert_eq!(page("/").as_deref(), Ok("fresh"));
    assert_eq!(page("/broken").as_deref(), Ok("cached"));
    assert_eq!(page("/missing"), Err(PageError::NotFound), "the fallback passes this error through");

    let runs = AtomicU32::new(0);
    assert_eq!(guarded_page(&runs).as_deref(), Ok("cached"), "the body failed");
    assert_eq!(guarded_page(&runs).as_deref(), Ok("cached"), "the open breaker refused");
    assert_eq!(runs.load(Ordering::Relaxed), 1);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(slow_page(Duration::ZERO).await.as_deref(), Ok("fresh"));
        assert_eq!(slow_page(Duration::from_secs(5)).await.as_deref(), Ok("stale"));
    });
}
