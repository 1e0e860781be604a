use hardened::hardened;

#[hardened(fields(user = user_id))]
fn lookup(id: u64) -> u64 {
    id
}

fn main() {
    lookup(1);
}
