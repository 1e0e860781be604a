use hardened::hardened;

#[hardened(kind = "llm", audit(event = "agent response"))]
fn complete(prompt: &str) -> String {
    prompt.to_owned()
}

fn main() {
    complete("hi");
}
