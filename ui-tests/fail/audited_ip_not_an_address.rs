use hardened::Audited;

#[derive(Audited)]
struct Request {
    #[audited(ip)]
    peer: u32,
    path: String,
}

fn main() {}
