//! `#[async_trait]` written before `#[hardened]` on the `impl`: `#[hardened]` then sees the boxed
//! futures that `#[async_trait]` produced and wraps the future inside each.
use async_trait::async_trait;
use hardened::hardened;

#[async_trait]
trait Tool {
    async fn call(&self, input: &str) -> Result<String, String>;
    async fn name(&self) -> &'static str;
}

struct Echo;

#[async_trait]
#[hardened(kind = "tool")]
impl Tool for Echo {
    async fn call(&self, input: &str) -> Result<String, String> {
        tokio::task::yield_now().await;
        if input.is_empty() {
            return Err("nothing to echo".to_owned());
        }
        Ok(input.to_owned())
    }

    async fn name(&self) -> &'static str {
        "echo"
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(async {
        let tool: Box<dyn Tool + Send + Sync> = Box::new(Echo);
        assert_eq!(tool.call("hi").await, Ok("hi".to_owned()));
        assert!(tool.call("").await.is_err());
        assert_eq!(tool.name().await, "echo");
    });
}
