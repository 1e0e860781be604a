use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[hardened(hedge(delay = "p95"))]
async fn search(query: &str) -> Result<usize, Unavailable> {
    Ok(query.len())
}

#[hardened(hedge(budget_ratio = 0.1))]
async fn lookup(query: &str) -> Result<usize, Unavailable> {
    Ok(query.len())
}

fn main() {
    let _ = (search("a"), lookup("b"));
}
