use hardened::Audited;

#[derive(Audited)]
enum Action {
    #[audited(event = "")]
    Ping,
}

fn main() {}
