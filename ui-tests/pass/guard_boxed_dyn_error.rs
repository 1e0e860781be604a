//! A guarded `async fn` returning `Box<dyn Error + Send + Sync>`, which holds a refusal because
//! `Rejected` is an error: `?` converts the body's errors and the caller downcasts the refusal.
use std::time::Duration;

use hardened::{Rejected, hardened};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[hardened(breaker = "config", timeout = "10ms")]
async fn read_port(text: &str, delay: Duration) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    tokio::time::sleep(delay).await;
    let port: u16 = text.trim().parse()?;
    Ok(port)
}

#[hardened(rate(per_second = 1, burst = 1))]
fn once_per_second() -> Result<(), BoxError> {
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(read_port("8080", Duration::ZERO).await.ok(), Some(8080));
        let invalid = read_port("eighty", Duration::ZERO).await.expect_err("not a number");
        assert!(invalid.downcast_ref::<std::num::ParseIntError>().is_some());
        let timed_out = read_port("8080", Duration::from_secs(5)).await.expect_err("too slow");
        assert_eq!(
            timed_out.downcast_ref::<Rejected>(),
            Some(&Rejected::TimedOut { after: Duration::from_millis(10) })
        );
        assert_eq!(timed_out.to_string(), "timed out after 10ms");
    });
    assert!(once_per_second().is_ok());
    let refused = once_per_second().expect_err("the second call in a second is refused");
    assert!(matches!(refused.downcast_ref::<Rejected>(), Some(Rejected::RateLimited { .. })));
}
