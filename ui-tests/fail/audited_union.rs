use hardened::Audited;

#[derive(Audited)]
union Payload {
    number: u64,
    bytes: [u8; 8],
}

fn main() {}
