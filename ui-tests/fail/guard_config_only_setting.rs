use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

// Keys of the configuration alone: the attribute refuses them and says where they are set.
#[hardened(breaker(name = "payments", extend_open_on_failure = true))]
fn charge(cents: u64) -> Result<u64, Unavailable> {
    Ok(cents)
}

#[hardened(rate(name = "geocoder", per_second = 10, replicas = 3))]
async fn geocode(address: &str) -> Result<usize, Unavailable> {
    Ok(address.len())
}

fn main() {
    let _ = charge(1);
    let _ = geocode("1 Main St");
}
