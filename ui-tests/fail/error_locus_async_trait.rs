use async_trait::async_trait;
use hardened::hardened;

#[async_trait]
trait Tool {
    async fn call(&self, input: &str) -> Result<String, String>;
}

struct Echo;

#[async_trait]
impl Tool for Echo {
    #[hardened(kind = "tool")]
    async fn call(&self, input: &str) -> Result<String, String> {
        let length: String = input.len();
        Ok(length)
    }
}

fn main() {
    drop(Echo.call("hi"));
}
