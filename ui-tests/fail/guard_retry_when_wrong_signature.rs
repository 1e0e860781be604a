use hardened::hardened;

#[derive(Debug)]
enum FetchError {
    Refused(hardened::Rejected),
    Status(u16),
}

impl From<hardened::Rejected> for FetchError {
    fn from(rejected: hardened::Rejected) -> Self {
        FetchError::Refused(rejected)
    }
}

// Takes the status code, where `when` receives a reference to the error.
fn is_transient(status: u16) -> bool {
    status >= 500
}

#[hardened(retry(attempts = 2, when = is_transient))]
async fn fetch(path: &str) -> Result<String, FetchError> {
    if path == "/" { Ok(path.to_owned()) } else { Err(FetchError::Status(503)) }
}

fn main() {
    let _ = fetch("/");
}
