use hardened::hardened;

#[hardened(metrics = false, histogram = false)]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
