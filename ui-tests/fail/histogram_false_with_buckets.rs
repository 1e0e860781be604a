use hardened::hardened;

#[hardened(histogram = false, buckets = [0.1, 1.0])]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
