use hardened::hardened;

#[hardened(name)]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
