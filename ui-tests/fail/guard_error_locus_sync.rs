use hardened::hardened;

#[derive(Debug)]
enum ApiError {
    Refused(hardened::Rejected),
}

impl From<hardened::Rejected> for ApiError {
    fn from(rejected: hardened::Rejected) -> Self {
        ApiError::Refused(rejected)
    }
}

// A mistake in the body of a guarded function is reported on the user's line, not in the guard chain.
#[hardened(breaker = "users", rate = 10, bulkhead = 2)]
fn lookup(id: u64) -> Result<&'static str, ApiError> {
    if id == 0 {
        return Err("no such user");
    }
    Ok("ada")
}

fn main() {
    let _ = lookup(1);
}
