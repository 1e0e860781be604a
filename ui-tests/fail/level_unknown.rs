use hardened::hardened;

#[hardened(level = "verbose")]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
