use hardened::hardened;

#[derive(Debug)]
enum FetchError {
    Refused(hardened::Rejected),
}

impl From<hardened::Rejected> for FetchError {
    fn from(rejected: hardened::Rejected) -> Self {
        FetchError::Refused(rejected)
    }
}

// Returns the value itself, where a fallback returns a `Result` of the function's types.
fn cached(_: FetchError) -> String {
    "cached".to_owned()
}

#[hardened(breaker = "pages", fallback = cached)]
fn fetch(path: &str) -> Result<String, FetchError> {
    Ok(path.to_owned())
}

fn main() {
    let _ = fetch("/");
}
