use hardened::hardened;

#[hardened(span = "no")]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
