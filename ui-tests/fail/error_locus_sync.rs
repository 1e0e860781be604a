use hardened::hardened;

#[hardened(kind = "tool", fields(id))]
fn lookup(id: u64) -> Result<String, String> {
    let name: String = id;
    Ok(name)
}

fn main() {
    let _ = lookup(1);
}
