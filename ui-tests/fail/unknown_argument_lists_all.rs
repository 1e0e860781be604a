use hardened::hardened;

#[hardened(colour = "blue")]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
