use hardened::hardened;

#[hardened(skip)]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
