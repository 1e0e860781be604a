use hardened::hardened;

#[hardened(kidn = "tool")]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
