//! Guarded functions returning aliases of `Result`: a crate-wide `Result<T>` and an alias with another
//! name; the guards see the error through the alias.
use hardened::{BreakerState, Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum ApiError {
    #[error(transparent)]
    Refused(#[from] Rejected),
    #[error("quota exceeded")]
    Quota,
}

type Result<T, E = ApiError> = std::result::Result<T, E>;
type ApiResult<T> = std::result::Result<T, ApiError>;

#[hardened(breaker(name = "quota", consecutive_failures = 2))]
fn charge(cents: u32) -> Result<u32> {
    if cents > 100 { Err(ApiError::Quota) } else { Ok(cents) }
}

#[hardened(breaker(name = "refunds", consecutive_failures = 1), timeout = "1s")]
async fn refund(cents: u32) -> ApiResult<u32> {
    if cents > 100 { Err(ApiError::Quota) } else { Ok(cents) }
}

fn main() {
    assert_eq!(charge(5), Ok(5));
    assert_eq!(charge(500), Err(ApiError::Quota));
    assert_eq!(charge(500), Err(ApiError::Quota));
    assert_eq!(charge(5), Err(ApiError::Refused(Rejected::CircuitOpen { name: "quota" })));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(refund(5).await, Ok(5));
        assert_eq!(refund(500).await, Err(ApiError::Quota));
        assert!(matches!(refund(5).await, Err(ApiError::Refused(Rejected::CircuitOpen { .. }))));
    });
    assert_eq!(hardened::breaker("refunds").state(), BreakerState::Open);
}
