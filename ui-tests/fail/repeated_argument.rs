use hardened::hardened;

#[hardened(kind = "tool", level = "debug", kind = "llm")]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
