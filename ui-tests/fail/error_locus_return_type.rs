use hardened::hardened;

#[hardened]
fn lookup(id: u64) -> u64 {
    if id == 0 {
        return "none";
    }
    id
}

fn main() {
    lookup(1);
}
