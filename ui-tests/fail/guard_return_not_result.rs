use hardened::hardened;

// A breaker refuses a call by returning an error, which a `u32` cannot hold.
#[hardened(breaker = "scores")]
fn score(id: u64) -> u32 {
    u32::try_from(id).unwrap_or(u32::MAX)
}

fn main() {
    score(1);
}
