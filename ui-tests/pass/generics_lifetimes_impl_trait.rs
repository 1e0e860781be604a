//! Generic functions with where clauses, explicit lifetimes and `impl Trait` arguments, sync and async.
use std::fmt::Display;

use hardened::hardened;

#[hardened]
fn largest<T>(items: &[T]) -> Option<&T>
where
    T: PartialOrd,
{
    let mut largest = items.first()?;
    for item in items {
        if item > largest {
            largest = item;
        }
    }
    Some(largest)
}

#[hardened]
fn longest<'a, 'b: 'a>(a: &'a str, b: &'b str) -> &'a str {
    if b.len() > a.len() { b } else { a }
}

#[hardened]
fn join(items: impl IntoIterator<Item = impl Display>, separator: &str) -> String {
    items.into_iter().map(|item| item.to_string()).collect::<Vec<_>>().join(separator)
}

#[hardened]
fn sum_with<const N: usize, F>(values: [u32; N], f: F) -> u32
where
    F: Fn(u32) -> u32,
{
    values.into_iter().map(f).sum()
}

#[hardened]
async fn pair<T, U>(value: T, other: impl Into<U>) -> (T, U)
where
    T: Clone + Send,
{
    tokio::task::yield_now().await;
    (value.clone(), other.into())
}

#[hardened]
async fn prefix<'a>(text: &'a str, separator: &str) -> &'a str {
    text.split(separator).next().unwrap_or(text)
}

fn main() {
    assert_eq!(largest(&[3, 9, 2]), Some(&9));
    assert_eq!(largest::<u8>(&[]), None);
    assert_eq!(longest("ab", "abc"), "abc");
    assert_eq!(join([1, 2, 3], ", "), "1, 2, 3");
    assert_eq!(sum_with([1, 2, 3], |x| x * 2), 12);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    assert_eq!(runtime.block_on(pair::<u8, u16>(1, 2_u8)), (1, 2));
    assert_eq!(runtime.block_on(prefix("a/b", "/")), "a");
}
