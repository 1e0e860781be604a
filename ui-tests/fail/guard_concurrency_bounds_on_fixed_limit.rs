use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[hardened(concurrency(name = "llm", limit = 8, min = 2, max = 200))]
async fn fetch(id: u64) -> Result<u64, Unavailable> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
