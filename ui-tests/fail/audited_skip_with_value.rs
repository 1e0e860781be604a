use hardened::Audited;

#[derive(Audited)]
struct Upload {
    name: String,
    #[audited(skip = true)]
    bytes: Vec<u8>,
}

fn main() {}
