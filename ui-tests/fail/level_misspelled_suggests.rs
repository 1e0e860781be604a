use hardened::hardened;

#[hardened(level = "Debug")]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
