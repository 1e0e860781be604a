//! Methods, sync and async, returning references borrowed from `self` or from an argument, with elided
//! lifetimes.
use hardened::hardened;

struct Config {
    name: String,
    tags: Vec<String>,
}

#[hardened]
impl Config {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self, index: usize) -> Option<&String> {
        self.tags.get(index)
    }

    async fn first_tag(&self) -> Option<&str> {
        tokio::task::yield_now().await;
        self.tags.first().map(String::as_str)
    }

    fn pick<'a>(&'a self, fallback: &'a str) -> Result<&'a str, &'a str> {
        self.tags.first().map(String::as_str).ok_or(fallback)
    }
}

fn main() {
    let mut config = Config { name: "api".to_owned(), tags: vec!["blue".to_owned()] };
    assert_eq!(config.name(), "api");
    assert_eq!(config.tag(0).map(String::as_str), Some("blue"));
    config.name.push_str("-v2");
    assert_eq!(config.name(), "api-v2");
    assert_eq!(config.pick("none"), Ok("blue"));
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    assert_eq!(runtime.block_on(config.first_tag()), Some("blue"));
}
