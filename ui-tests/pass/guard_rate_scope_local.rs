//! `scope = "local"`, written out: the limiter is this process's own, as without `scope`.
use hardened::rate_limit::Scope;
use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum ApiError {
    #[error(transparent)]
    Refused(#[from] Rejected),
}

#[hardened(rate(name = "local_scope", per_second = "2/h", scope = "local"))]
fn lookup(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    assert_eq!(lookup(1), Ok(1));
    assert_eq!(lookup(2), Ok(2));
    assert!(matches!(lookup(3), Err(ApiError::Refused(Rejected::RateLimited { name: "local_scope", .. }))));
    assert_eq!(hardened::rate_limiter("local_scope").scope(), Scope::Local);
}
