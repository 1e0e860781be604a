//! Early `return` and `?` in sync and async bodies return from the user's function, not from a
//! wrapper, and `?` still converts errors with `From`.
use std::num::ParseIntError;

use hardened::hardened;

#[derive(Debug, PartialEq)]
enum AppError {
    Parse,
    Negative,
}

impl From<ParseIntError> for AppError {
    fn from(_: ParseIntError) -> Self {
        AppError::Parse
    }
}

#[hardened]
fn parse_positive(text: &str) -> Result<i64, AppError> {
    if text.is_empty() {
        return Ok(0);
    }
    let value: i64 = text.parse()?;
    if value < 0 {
        return Err(AppError::Negative);
    }
    Ok(value)
}

#[hardened]
fn first_char(text: &str) -> Option<char> {
    let first = text.chars().next()?;
    Some(first.to_ascii_uppercase())
}

#[hardened]
fn classify(n: i32) -> &'static str {
    if n < 0 {
        return "negative";
    }
    "non-negative"
}

#[hardened]
async fn parse_later(text: &str) -> Result<i64, AppError> {
    tokio::task::yield_now().await;
    if text == "zero" {
        return Ok(0);
    }
    let value: i64 = text.parse()?;
    Ok(value * 2)
}

#[hardened]
async fn boxed_error(text: &str) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    let value: u8 = text.parse()?;
    Ok(value)
}

fn main() {
    assert_eq!(parse_positive(""), Ok(0));
    assert_eq!(parse_positive("12"), Ok(12));
    assert_eq!(parse_positive("-3"), Err(AppError::Negative));
    assert_eq!(parse_positive("x"), Err(AppError::Parse));
    assert_eq!(first_char("abc"), Some('A'));
    assert_eq!(first_char(""), None);
    assert_eq!(classify(-1), "negative");
    assert_eq!(classify(1), "non-negative");

    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(parse_later("zero").await, Ok(0));
        assert_eq!(parse_later("21").await, Ok(42));
        assert_eq!(parse_later("x").await, Err(AppError::Parse));
        assert_eq!(boxed_error("7").await.ok(), Some(7));
        assert!(boxed_error("300").await.is_err());
    });
}
