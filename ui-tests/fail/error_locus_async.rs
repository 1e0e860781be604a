use hardened::hardened;

#[hardened(kind = "tool", fields(id))]
async fn lookup(id: u64) -> Result<String, String> {
    tokio::task::yield_now().await;
    let name: String = id;
    Ok(name)
}

fn main() {
    drop(lookup(1));
}
