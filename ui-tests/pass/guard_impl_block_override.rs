//! Guards on an annotated `impl` block: every method gets the block's guards, a method's own attribute
//! replaces the guards it names and keeps the others, and `skip` leaves a method unguarded.
use std::time::Duration;

use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum StoreError {
    #[error(transparent)]
    Refused(#[from] Rejected),
    #[error("no such key")]
    Missing,
}

#[derive(Default)]
struct Store {
    entries: Vec<(String, u32)>,
}

#[hardened(breaker = "store", bulkhead = 4)]
impl Store {
    fn get(&self, key: &str) -> Result<u32, StoreError> {
        self.entries.iter().find(|(name, _)| name == key).map(|(_, value)| *value).ok_or(StoreError::Missing)
    }

    #[hardened(bulkhead(name = "store.writes", max = 1), rate = 1000)]
    fn put(&mut self, key: &str, value: u32) -> Result<(), StoreError> {
        self.entries.push((key.to_owned(), value));
        Ok(())
    }

    #[hardened(timeout = "1s", retry = 1)]
    async fn flush(&self) -> Result<usize, StoreError> {
        tokio::task::yield_now().await;
        Ok(self.entries.len())
    }

    #[hardened(skip)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

fn site(function: &str) -> &'static hardened::Site {
    hardened::sites().iter().find(|site| site.function() == function).expect("the function is registered")
}

fn main() {
    let mut store = Store::default();
    assert_eq!(store.put("a", 1), Ok(()));
    assert_eq!(store.get("a"), Ok(1));
    assert_eq!(store.get("b"), Err(StoreError::Missing));
    assert_eq!(store.len(), 1);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    assert_eq!(runtime.block_on(store.flush()), Ok(1));

    let store_breaker = hardened::breaker("store");
    assert_eq!(store_breaker.counts().success + store_breaker.counts().failure, 4, "every method shares the breaker");
    assert_eq!(site("get").guards().expect("guards").bulkhead().map(|bulkhead| bulkhead.config().max), Some(4));
    assert_eq!(site("put").guards().expect("guards").bulkhead().map(|bulkhead| bulkhead.name()), Some("store.writes"));
    assert!(site("put").guards().expect("guards").rate_limiter().is_some());
    assert!(site("get").guards().expect("guards").rate_limiter().is_none());
    assert_eq!(site("flush").guards().expect("guards").timeout(), Some(Duration::from_secs(1)));
    assert!(site("flush").guards().expect("guards").retry().is_some());
    assert!(!hardened::sites().iter().any(|site| site.function() == "len"));
}
