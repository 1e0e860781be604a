//! Every form of `hedge`: alone, a percentile or a fixed delay, a named policy shared by two functions,
//! beside retries and a timeout, audited once marked idempotent, and on a method borrowing `self`.
use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[hardened(hedge)]
async fn bare(query: &str) -> Result<usize, Unavailable> {
    Ok(query.len())
}

#[hardened(hedge(after = "p99.9", max = 3))]
async fn percentile(query: String) -> Result<usize, Unavailable> {
    Ok(query.len())
}

#[hardened(hedge(name = "search", after = "200ms"))]
async fn first_search(query: &str) -> Result<usize, Unavailable> {
    Ok(query.len())
}

#[hardened(hedge = "search", retry = 2, timeout = "1s", breaker = "search")]
async fn second_search(query: &str) -> Result<usize, Unavailable> {
    Ok(query.len())
}

#[hardened(kind = "tool", hedge(after = "p95", idempotent), audit)]
async fn read_quote(symbol: &str) -> Result<usize, Unavailable> {
    Ok(symbol.len())
}

struct Client {
    base: String,
}

impl Client {
    #[hardened(hedge(after = "50ms", max = 2))]
    async fn fetch(&self, path: &str) -> Result<usize, Unavailable> {
        Ok(self.base.len() + path.len())
    }
}

fn assert_send<F: std::future::Future + Send>(future: F) -> F {
    future
}

fn main() {
    let client = Client { base: "https://example.test".to_owned() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(bare("ab").await.ok(), Some(2));
        assert_eq!(assert_send(percentile("abc".to_owned())).await.ok(), Some(3));
        assert_eq!(first_search("a").await.ok(), Some(1));
        assert_eq!(second_search("ab").await.ok(), Some(2));
        assert_eq!(read_quote("ACME").await.ok(), Some(4));
        assert_eq!(assert_send(client.fetch("/x")).await.ok(), Some(22));
    });
}
