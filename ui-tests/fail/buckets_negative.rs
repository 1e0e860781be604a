use hardened::hardened;

#[hardened(buckets = [0.1, -0.5, 1.0])]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
