use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[hardened(hedge(after = "p100"))]
async fn search(query: &str) -> Result<usize, Unavailable> {
    Ok(query.len())
}

#[hardened(hedge(after = "soon"))]
async fn lookup(query: &str) -> Result<usize, Unavailable> {
    Ok(query.len())
}

fn main() {
    let _ = (search("a"), lookup("b"));
}
