//! Every function shape `#[hardened]` supports, called at run time and checked through its metrics.

use std::fmt::Display;

use async_trait::async_trait;
use hardened::hardened;
use hardened_tests::calls;

#[derive(Debug, PartialEq)]
struct Failure(String);

impl<E: Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure(error.to_string())
    }
}

#[hardened]
fn free_function(x: u32) -> u32 {
    x + 1
}

#[hardened]
fn generic_with_where<T>(items: &[T]) -> Option<&T>
where
    T: PartialOrd,
{
    items.iter().fold(None, |best, item| match best {
        Some(best) if best >= item => Some(best),
        _ => Some(item),
    })
}

#[hardened]
fn with_lifetimes<'a, 'b: 'a>(left: &'a str, right: &'b str) -> &'a str {
    if left.len() >= right.len() { left } else { right }
}

#[hardened]
fn impl_trait_argument(items: impl IntoIterator<Item = u32>) -> u32 {
    items.into_iter().sum()
}

#[hardened]
fn impl_trait_return(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[hardened]
fn early_return_and_question_mark(text: &str) -> Result<u32, Failure> {
    if text.is_empty() {
        return Err(Failure("empty".into()));
    }
    let value: u32 = text.parse()?;
    Ok(value * 2)
}

#[hardened]
async fn async_early_return_and_question_mark(text: &str) -> Result<u32, Failure> {
    tokio::task::yield_now().await;
    if text.is_empty() {
        return Err(Failure("empty".into()));
    }
    let value: u32 = text.parse()?;
    Ok(value * 2)
}

#[hardened]
async fn async_generic<T: Display + Send>(value: T) -> String {
    tokio::task::yield_now().await;
    value.to_string()
}

#[hardened]
fn r#type() -> &'static str {
    "raw identifier"
}

/// # Safety
/// Always safe; it exists to check that `unsafe fn` is wrapped.
#[hardened]
unsafe fn unsafe_function(x: u8) -> u8 {
    x
}

struct Counter {
    count: u32,
    label: String,
}

impl Counter {
    #[hardened]
    fn new(label: &str) -> Self {
        Counter { count: 0, label: label.to_owned() }
    }

    #[hardened]
    fn increment(&mut self) -> u32 {
        self.count += 1;
        self.count
    }

    #[hardened]
    fn label(&self) -> &str {
        &self.label
    }

    #[hardened]
    fn into_count(self) -> u32 {
        self.count
    }

    #[hardened]
    async fn async_method(&self, by: u32) -> u32 {
        tokio::task::yield_now().await;
        self.count + by
    }
}

#[hardened(kind = "tool")]
impl Counter {
    fn block_method(&self) -> u32 {
        self.count
    }

    #[hardened(name = "block_method_renamed", kind = "reducer")]
    fn block_method_override(&self) -> u32 {
        self.count * 10
    }

    #[hardened(skip)]
    fn block_method_skipped(&self) -> u32 {
        self.count * 100
    }
}

trait Shape {
    fn area(&self) -> f64;
    fn describe(&self) -> String {
        format!("area {}", self.area())
    }
}

struct Square(f64);

impl Shape for Square {
    #[hardened]
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

trait Fetch {
    async fn fetch(&self, key: &str) -> Result<String, Failure>;
}

struct Store;

impl Fetch for Store {
    #[hardened]
    async fn fetch(&self, key: &str) -> Result<String, Failure> {
        tokio::task::yield_now().await;
        if key == "missing" { Err(Failure("missing".into())) } else { Ok(key.to_uppercase()) }
    }
}

#[async_trait]
trait Tool {
    async fn run(&self, input: &str) -> Result<usize, Failure>;
}

struct MethodAnnotated;

#[async_trait]
impl Tool for MethodAnnotated {
    #[hardened(name = "async_trait_method")]
    async fn run(&self, input: &str) -> Result<usize, Failure> {
        tokio::task::yield_now().await;
        if input.is_empty() { Err(Failure("empty".into())) } else { Ok(input.len()) }
    }
}

struct HardenedFirst;

#[hardened(kind = "tool")]
#[async_trait]
impl Tool for HardenedFirst {
    async fn run(&self, input: &str) -> Result<usize, Failure> {
        tokio::task::yield_now().await;
        Ok(input.len() * 2)
    }
}

struct AsyncTraitFirst;

#[async_trait]
#[hardened(kind = "llm")]
impl Tool for AsyncTraitFirst {
    async fn run(&self, input: &str) -> Result<usize, Failure> {
        tokio::task::yield_now().await;
        Ok(input.len() * 3)
    }
}

struct SpawnedTool;

#[hardened(kind = "spawned")]
#[async_trait]
impl Tool for SpawnedTool {
    async fn run(&self, input: &str) -> Result<usize, Failure> {
        tokio::task::yield_now().await;
        Ok(input.len())
    }
}

#[test]
#[allow(unsafe_code, reason = "calls the wrapped `unsafe fn`")]
fn sync_shapes_run_and_are_counted() {
    assert_eq!(free_function(1), 2);
    assert_eq!(generic_with_where(&[3, 9, 4]), Some(&9));
    assert_eq!(with_lifetimes("long", "s"), "long");
    assert_eq!(impl_trait_argument(vec![1, 2, 3]), 6);
    assert_eq!(impl_trait_return(3).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(early_return_and_question_mark("21"), Ok(42));
    assert_eq!(early_return_and_question_mark(""), Err(Failure("empty".into())));
    assert_eq!(early_return_and_question_mark("x"), Err(Failure("invalid digit found in string".into())));
    assert_eq!(r#type(), "raw identifier");
    // SAFETY: `unsafe_function` has no preconditions.
    assert_eq!(unsafe { unsafe_function(7) }, 7);

    for (function, ok, error) in [
        ("free_function", 1, 0),
        ("generic_with_where", 1, 0),
        ("with_lifetimes", 1, 0),
        ("impl_trait_argument", 1, 0),
        ("impl_trait_return", 1, 0),
        ("early_return_and_question_mark", 1, 2),
        ("type", 1, 0),
        ("unsafe_function", 1, 0),
    ] {
        assert_eq!((calls(function, "ok"), calls(function, "error")), (ok, error), "{function}");
    }
}

#[test]
fn methods_run_and_are_counted() {
    let mut counter = Counter::new("clicks");
    assert_eq!(counter.increment(), 1);
    assert_eq!(counter.label(), "clicks");
    assert_eq!(counter.block_method(), 1);
    assert_eq!(counter.block_method_override(), 10);
    assert_eq!(counter.block_method_skipped(), 100);
    assert_eq!(Square(3.0).describe(), "area 9");
    assert_eq!(counter.into_count(), 1);

    for function in ["new", "increment", "label", "into_count", "block_method", "block_method_renamed", "area"] {
        assert_eq!(calls(function, "ok"), 1, "{function}");
    }
    assert!(hardened::sites().iter().all(|site| site.function() != "block_method_skipped"));
    let renamed = hardened::sites().iter().find(|site| site.name() == "block_method_renamed").expect("site");
    assert_eq!((renamed.function(), renamed.kind()), ("block_method_override", "reducer"));
    let inherited = hardened::sites().iter().find(|site| site.name() == "block_method").expect("site");
    assert_eq!(inherited.kind(), "tool");
}

#[tokio::test]
async fn async_shapes_run_and_are_counted() {
    assert_eq!(async_early_return_and_question_mark("4").await, Ok(8));
    assert!(async_early_return_and_question_mark("").await.is_err());
    assert_eq!(async_generic(5).await, "5");
    assert_eq!(Counter { count: 0, label: String::new() }.async_method(2).await, 2);
    assert_eq!(Store.fetch("key").await, Ok("KEY".into()));
    assert!(Store.fetch("missing").await.is_err());

    assert_eq!(calls("async_early_return_and_question_mark", "ok"), 1);
    assert_eq!(calls("async_early_return_and_question_mark", "error"), 1);
    assert_eq!(calls("async_generic", "ok"), 1);
    assert_eq!(calls("async_method", "ok"), 1);
    assert_eq!((calls("fetch", "ok"), calls("fetch", "error")), (1, 1));
}

#[tokio::test]
async fn async_trait_methods_are_wrapped_whichever_attribute_comes_first() {
    let tools: [(&(dyn Tool + Sync), &str); 3] =
        [(&MethodAnnotated, "function"), (&HardenedFirst, "tool"), (&AsyncTraitFirst, "llm")];
    let results = futures::future::join_all(tools.iter().map(|(tool, _)| tool.run("abc"))).await;
    assert_eq!(results, [Ok(3), Ok(6), Ok(9)]);
    assert!(MethodAnnotated.run("").await.is_err());

    assert_eq!(calls("async_trait_method", "ok"), 1);
    assert_eq!(calls("async_trait_method", "error"), 1);
    let kinds: Vec<&str> =
        hardened::sites().iter().filter(|site| site.name() == "run").map(hardened::Site::kind).collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(kinds.contains(&"tool") && kinds.contains(&"llm"));
    for (kind, expected) in [("tool", 1), ("llm", 1)] {
        let count =
            hardened_tests::sample("hardened_calls_total", &[("function", "run"), ("kind", kind), ("outcome", "ok")]);
        assert_eq!(count, Some(expected), "{kind}");
    }
}

#[tokio::test]
async fn async_trait_futures_stay_send() {
    fn assert_send<T: Send>(value: T) -> T {
        value
    }
    let handle = tokio::spawn(assert_send(async { SpawnedTool.run("ab").await }));
    assert_eq!(handle.await.expect("task finished"), Ok(2));
    assert_eq!(hardened_tests::sample("hardened_calls_total", &[("kind", "spawned"), ("outcome", "ok")]), Some(1));
}
