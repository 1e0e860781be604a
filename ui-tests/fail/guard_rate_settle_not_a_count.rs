use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

struct Reply {
    tokens: u64,
}

fn tokens_used(reply: &Reply) -> String {
    reply.tokens.to_string()
}

#[hardened(rate(name = "tokens", per_minute = 1000, cost = 10_u32, settle = tokens_used))]
async fn complete(prompt: &str) -> Result<Reply, Unavailable> {
    Ok(Reply { tokens: prompt.len() as u64 })
}

fn main() {
    let _ = complete("hi");
}
