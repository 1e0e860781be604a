use hardened::hardened;

#[hardened(fields(user.id = id))]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
