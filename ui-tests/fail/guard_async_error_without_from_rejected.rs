use hardened::hardened;

#[derive(Debug)]
struct ParseError;

// Reported once, at the error type, although the retry loop and the timeout each need the conversion.
#[hardened(timeout = "1s", retry(attempts = 2, backoff = "10ms"))]
async fn parse(text: &str) -> Result<u32, ParseError> {
    text.parse().map_err(|_| ParseError)
}

fn main() {
    let _ = parse("1");
}
