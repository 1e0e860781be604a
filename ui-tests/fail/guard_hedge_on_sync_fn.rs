use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[hardened(hedge(after = "p95"))]
fn poll_upstream(id: u64) -> Result<u64, Unavailable> {
    Ok(id)
}

fn main() {
    let _ = poll_upstream(1);
}
