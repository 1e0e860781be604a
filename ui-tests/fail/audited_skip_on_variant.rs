use hardened::Audited;

#[derive(Audited)]
enum Action {
    #[audited(skip)]
    Ping,
    Search { query: String },
}

fn main() {}
