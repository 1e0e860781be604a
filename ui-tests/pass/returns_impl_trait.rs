//! Functions returning `impl Trait`, alone and inside a `Result` (where `?` must still convert the
//! error), sync and async.
use hardened::hardened;

#[hardened]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[hardened]
fn checked(limit: u32) -> Result<impl Iterator<Item = u32>, String> {
    if limit > 100 {
        return Err(format!("{limit} is too many"));
    }
    Ok(0..limit)
}

#[hardened]
fn parsed(text: &str) -> Result<impl Iterator<Item = u32>, Box<dyn std::error::Error>> {
    let count: u32 = text.parse()?;
    Ok(0..count)
}

#[hardened]
async fn later(value: u32) -> impl std::fmt::Display {
    tokio::task::yield_now().await;
    value
}

fn main() {
    assert_eq!(evens(7).collect::<Vec<_>>(), [0, 2, 4, 6]);
    assert_eq!(checked(3).map(Iterator::count), Ok(3));
    assert!(checked(1000).is_err());
    assert_eq!(parsed("2").map(Iterator::count).ok(), Some(2));
    assert!(parsed("two").is_err());
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    assert_eq!(runtime.block_on(later(5)).to_string(), "5");
}
