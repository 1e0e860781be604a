//! Native `async fn` in a trait, implemented with `#[hardened]` on the method and on the block.
use hardened::hardened;

trait Store {
    async fn get(&self, key: &str) -> Option<u32>;
    async fn put(&mut self, key: &str, value: u32) -> Result<(), String>;
}

#[derive(Default)]
struct Memory(Vec<(String, u32)>);

#[derive(Default)]
struct ReadOnly;

impl Store for Memory {
    #[hardened(kind = "store")]
    async fn get(&self, key: &str) -> Option<u32> {
        tokio::task::yield_now().await;
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    #[hardened(kind = "store")]
    async fn put(&mut self, key: &str, value: u32) -> Result<(), String> {
        self.0.push((key.to_owned(), value));
        Ok(())
    }
}

#[hardened(kind = "store")]
impl Store for ReadOnly {
    async fn get(&self, _key: &str) -> Option<u32> {
        None
    }

    async fn put(&mut self, key: &str, _value: u32) -> Result<(), String> {
        Err(format!("cannot write `{key}`"))
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(async {
        let mut memory = Memory::default();
        memory.put("a", 1).await.expect("writable");
        assert_eq!(memory.get("a").await, Some(1));
        assert_eq!(memory.get("b").await, None);

        let mut read_only = ReadOnly;
        assert!(read_only.put("a", 1).await.is_err());
        assert_eq!(read_only.get("a").await, None);
    });
}
