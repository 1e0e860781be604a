use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[hardened(rate(name = "tokens", per_minute = 1000, cost = prompt))]
async fn complete(prompt: &str) -> Result<usize, Unavailable> {
    Ok(prompt.len())
}

fn main() {
    let _ = complete("hi");
}
