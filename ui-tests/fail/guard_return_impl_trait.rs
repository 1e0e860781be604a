use hardened::hardened;

// An opaque type is never known to be a `Result`.
#[hardened(breaker = "labels")]
fn label(id: u64) -> impl std::fmt::Display {
    id
}

fn main() {
    label(1).to_string();
}
