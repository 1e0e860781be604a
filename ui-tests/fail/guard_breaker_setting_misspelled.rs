use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[hardened(breaker(failur_rate = 50))]
fn fetch(id: u64) -> Result<u64, Unavailable> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
