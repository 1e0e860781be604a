use hardened::hardened;

#[hardened(name = 5)]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
