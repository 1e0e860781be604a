use hardened::hardened;

// A function without a return type has nothing to return a refusal in.
#[hardened(timeout = "1s")]
async fn ping() {
    tokio::task::yield_now().await;
}

fn main() {
    let _ = ping();
}
