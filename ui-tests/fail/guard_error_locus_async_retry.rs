use hardened::hardened;

#[derive(Debug)]
enum ApiError {
    Refused(hardened::Rejected),
    NotFound,
}

impl From<hardened::Rejected> for ApiError {
    fn from(rejected: hardened::Rejected) -> Self {
        ApiError::Refused(rejected)
    }
}

fn missing(error: ApiError) -> Result<String, ApiError> {
    match error {
        ApiError::NotFound => Ok(String::new()),
        other => Err(other),
    }
}

// A mistake in the body is reported on the user's line, through the retry loop and the timeout.
#[hardened(timeout = "1s", retry = 2, fallback = missing)]
async fn fetch(id: u64) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    let name: String = id;
    Ok(name)
}

fn main() {
    let _ = fetch(1);
}
