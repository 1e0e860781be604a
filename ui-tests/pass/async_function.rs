//! An `async fn` keeps its behaviour, including borrowing its arguments across an `.await`.
use hardened::hardened;

#[hardened(kind = "tool")]
async fn forecast(city: &str) -> Result<i32, String> {
    tokio::task::yield_now().await;
    match city {
        "Lisbon" => Ok(21),
        other => Err(format!("no forecast for {other}")),
    }
}

#[hardened]
async fn count(items: &[u8]) -> usize {
    tokio::task::yield_now().await;
    items.len()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(forecast("Lisbon").await, Ok(21));
        assert_eq!(forecast("Oslo").await, Err("no forecast for Oslo".to_owned()));
        assert_eq!(count(&[1, 2, 3]).await, 3);
    });
}
