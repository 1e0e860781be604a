use hardened::hardened;

#[derive(Debug)]
enum LookupError {
    NotFound,
}

// `LookupError` has no `From<hardened::Rejected>`, so a refusal by the breaker has nowhere to go.
#[hardened(breaker = "users")]
fn lookup(id: u64) -> Result<&'static str, LookupError> {
    if id == 7 { Ok("ada") } else { Err(LookupError::NotFound) }
}

fn main() {
    let _ = lookup(7);
}
