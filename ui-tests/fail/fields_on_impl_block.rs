use hardened::hardened;

struct Users;

// Reported once, on the block, and not again for `count`, which has no `id`.
#[hardened(fields(id))]
impl Users {
    fn find(&self, id: u64) -> u64 {
        id
    }

    fn count(&self) -> usize {
        0
    }
}

fn main() {
    Users.find(1);
    Users.count();
}
