//! Raw identifiers are named without their `r#` in spans, labels and the registry.
use hardened::hardened;

#[hardened(fields(r#in))]
fn r#type(r#in: u8) -> u8 {
    r#in * 2
}

struct Token;

impl Token {
    #[hardened]
    fn r#match(&self, r#ref: &str) -> bool {
        r#ref == "match"
    }
}

fn main() {
    assert_eq!(r#type(2), 4);
    assert!(Token.r#match("match"));
    assert!(hardened::sites().iter().any(|site| site.name() == "type"));
    assert!(hardened::sites().iter().any(|site| site.function() == "match"));
}
