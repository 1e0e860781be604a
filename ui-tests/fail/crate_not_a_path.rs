use hardened::hardened;

#[hardened(crate = "not a path")]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
