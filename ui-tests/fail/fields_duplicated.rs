use hardened::hardened;

#[hardened(fields(id, name, id = id + 1))]
fn lookup(id: u64, name: &str) -> usize {
    name.len() + usize::from(id == 0)
}

fn main() {
    lookup(1, "ada");
}
