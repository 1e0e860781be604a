//! A plain free function, with and without a `Result`, keeps its behaviour and shows up in the registry.
use hardened::hardened;

#[hardened]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[hardened(kind = "parser", level = "debug")]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

#[hardened]
fn nothing() {}

fn main() {
    assert_eq!(add(2, 3), 5);
    assert_eq!(parse("42"), Ok(42));
    assert!(parse("x").is_err());
    nothing();
    let site = hardened::sites().iter().find(|site| site.name() == "parse").expect("`parse` is registered");
    assert_eq!(site.kind(), "parser");
}
