use hardened::hardened;

struct Users;

// The method's own attribute is wrong: the error is reported once, and the methods stay callable.
#[hardened(kind = "db")]
impl Users {
    #[hardened(levle = "debug")]
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
