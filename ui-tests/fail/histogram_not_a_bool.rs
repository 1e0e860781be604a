use hardened::hardened;

#[hardened(histogram = "off")]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
