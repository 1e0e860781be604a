//! `#[hardened]` on individual methods inside an `#[async_trait]` impl, one of them left plain.
use async_trait::async_trait;
use hardened::hardened;

#[async_trait]
trait Repository {
    async fn find(&self, id: u64) -> Option<String>;
    async fn save(&mut self, name: String) -> Result<u64, String>;
    async fn len(&self) -> usize;
}

#[derive(Default)]
struct Users(Vec<String>);

#[async_trait]
impl Repository for Users {
    #[hardened(kind = "db", fields(id))]
    async fn find(&self, id: u64) -> Option<String> {
        let index = usize::try_from(id).ok()?;
        self.0.get(index).cloned()
    }

    #[hardened(kind = "db", fields(len = name.len()))]
    async fn save(&mut self, name: String) -> Result<u64, String> {
        tokio::task::yield_now().await;
        self.0.push(name);
        u64::try_from(self.0.len() - 1).map_err(|error| error.to_string())
    }

    async fn len(&self) -> usize {
        self.0.len()
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(async {
        let mut users = Users::default();
        assert_eq!(users.save("ada".to_owned()).await, Ok(0));
        assert_eq!(users.find(0).await.as_deref(), Some("ada"));
        assert_eq!(users.find(1).await, None);
        assert_eq!(users.len().await, 1);
    });
}
