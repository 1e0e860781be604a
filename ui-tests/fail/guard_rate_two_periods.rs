use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[hardened(rate(name = "tokens", per_second = 5, per_minute = 300))]
fn lookup(user: u64) -> Result<u64, Unavailable> {
    Ok(user)
}

fn main() {
    let _ = lookup(1);
}
