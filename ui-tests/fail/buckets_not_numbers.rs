use hardened::hardened;

#[hardened(buckets = [0.1, "1s"])]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
