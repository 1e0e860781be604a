use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

struct Client;

// The block's `timeout` reaches the synchronous methods too.
#[hardened(timeout = "1s")]
impl Client {
    async fn fetch(&self) -> Result<u32, Unavailable> {
        Ok(1)
    }

    fn cached(&self) -> Result<u32, Unavailable> {
        Ok(2)
    }

    fn stale(&self) -> Result<u32, Unavailable> {
        Ok(3)
    }
}

fn main() {
    let _ = Client.fetch();
    let _ = Client.cached();
    let _ = Client.stale();
}
