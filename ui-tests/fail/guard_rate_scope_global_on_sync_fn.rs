use hardened::{Rejected, hardened};

#[derive(Debug)]
struct Unavailable;

impl From<Rejected> for Unavailable {
    fn from(_: Rejected) -> Self {
        Unavailable
    }
}

#[hardened(rate(name = "anthropic", per_second = 50, scope = "global"))]
fn poll_upstream(id: u64) -> Result<u64, Unavailable> {
    Ok(id)
}

fn main() {
    let _ = poll_upstream(1);
}
