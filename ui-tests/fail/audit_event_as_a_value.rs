use hardened::hardened;

#[hardened(kind = "llm", audit = "AgentResponse")]
fn complete(prompt: &str) -> String {
    prompt.to_owned()
}

fn main() {
    complete("hi");
}
