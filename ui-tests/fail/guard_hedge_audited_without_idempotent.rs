use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[hardened(kind = "tool", hedge(after = "p95"), audit)]
async fn charge_card(cents: u64) -> Result<u64, Unavailable> {
    Ok(cents)
}

fn main() {
    let _ = charge_card(100);
}
