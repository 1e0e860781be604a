//! `ok_if` and `error_if` decide the outcome from the returned value, by a path to a function or to
//! an associated function.
use hardened::hardened;

fn found(status: &u16) -> bool {
    *status < 500
}

struct Checks;

impl Checks {
    fn is_empty(items: &Vec<u8>) -> bool {
        items.is_empty()
    }
}

mod rules {
    pub fn is_teapot(status: &Result<u16, String>) -> bool {
        matches!(status, Ok(418))
    }
}

#[hardened(ok_if = found)]
fn fetch(path: &str) -> u16 {
    if path == "/" { 200 } else { 503 }
}

#[hardened(error_if = Checks::is_empty)]
fn load(n: u8) -> Vec<u8> {
    (0..n).collect()
}

#[hardened(error_if = rules::is_teapot)]
async fn brew(kind: &str) -> Result<u16, String> {
    match kind {
        "tea" => Ok(418),
        "coffee" => Ok(200),
        other => Err(format!("cannot brew {other}")),
    }
}

fn main() {
    assert_eq!(fetch("/"), 200);
    assert_eq!(fetch("/missing"), 503);
    assert_eq!(load(2), [0, 1]);
    assert!(load(0).is_empty());
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(brew("tea").await, Ok(418));
        assert_eq!(brew("coffee").await, Ok(200));
        assert!(brew("water").await.is_err());
    });
    let metrics = hardened::metrics::render();
    assert!(metrics.contains(r#"function="fetch""#), "{metrics}");
}
