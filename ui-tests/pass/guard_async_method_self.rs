//! Guards on `async` methods taking `&self` and `&mut self`: each attempt borrows the receiver and the
//! arguments again, and state changed by a failed attempt is seen by the next.
use std::time::Duration;

use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum ClientError {
    #[error(transparent)]
    Refused(#[from] Rejected),
    #[error("connection reset")]
    Reset,
}

struct Client {
    base: String,
    attempts: u32,
}

impl Client {
    #[hardened(breaker = "client", timeout = "1s", retry = 2)]
    async fn get(&self, path: &str) -> Result<String, ClientError> {
        tokio::task::yield_now().await;
        Ok(format!("{}{path}", self.base))
    }

    #[hardened(retry(attempts = 3, backoff = "1ms"), timeout = "1s")]
    async fn reconnect(&mut self, succeed_on: u32) -> Result<u32, ClientError> {
        self.attempts += 1;
        tokio::task::yield_now().await;
        if self.attempts < succeed_on { Err(ClientError::Reset) } else { Ok(self.attempts) }
    }

    #[hardened(timeout = "10ms")]
    async fn hang(&self) -> Result<(), ClientError> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(())
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    runtime.block_on(async {
        let mut client = Client { base: "https://example.com".to_owned(), attempts: 0 };
        let path = String::from("/users");
        assert_eq!(client.get(&path).await.as_deref(), Ok("https://example.com/users"));
        assert_eq!(client.reconnect(3).await, Ok(3));
        assert_eq!(client.attempts, 3);
        assert_eq!(
            client.hang().await,
            Err(ClientError::Refused(Rejected::TimedOut { after: Duration::from_millis(10) }))
        );
    });
    assert_eq!(hardened::breaker("client").counts().success, 1);
}
