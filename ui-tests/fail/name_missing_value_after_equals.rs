use hardened::hardened;

#[hardened(kind = "tool", name = )]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
