use hardened::hardened;

struct Users;

#[hardened(skip)]
impl Users {
    fn find(&self, id: u64) -> u64 {
        id
    }
}

fn main() {
    Users.find(1);
}
