use hardened::{Rejected, hardened};

#[derive(Debug)]
struct Unavailable;

impl From<Rejected> for Unavailable {
    fn from(_: Rejected) -> Self {
        Unavailable
    }
}

#[hardened(rate(name = "anthropic", per_second = 50, scope = "globl"))]
async fn complete(prompt: &str) -> Result<usize, Unavailable> {
    Ok(prompt.len())
}

fn main() {
    let _ = complete("hi");
}
