use hardened::hardened;

#[hardened(timeout = 5)]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
