use hardened::hardened;

// The only error is the attribute's: the function and the impl are still there, so the calls in
// `main` report nothing.
#[hardened(kind = "tool", lvel = "debug")]
fn lookup(id: u64) -> u64 {
    id
}

struct Users;

#[hardened(kind = 5)]
impl Users {
    fn find(&self, id: u64) -> u64 {
        id
    }
}

fn main() {
    assert_eq!(lookup(1), 1);
    assert_eq!(Users.find(2), 2);
}
