//! A function with a timeout and no retries runs its body once: the body may move its arguments.
use std::time::Duration;

use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Refused(#[from] Rejected),
}

fn consume(message: String) -> usize {
    message.len()
}

#[hardened(timeout = "1s", breaker = "mover")]
async fn send(message: String) -> Result<usize, SendError> {
    tokio::task::yield_now().await;
    Ok(consume(message))
}

#[hardened(timeout = "10ms")]
async fn send_slowly(message: String) -> Result<usize, SendError> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(consume(message))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    assert_eq!(runtime.block_on(send("hello".to_owned())), Ok(5));
    assert_eq!(
        runtime.block_on(send_slowly("hello".to_owned())),
        Err(SendError::Refused(Rejected::TimedOut { after: Duration::from_millis(10) }))
    );
}
