use hardened::Audited;

#[derive(Audited)]
enum Action {
    #[audited(event = UserLogin)]
    Login { user: String },
}

fn main() {}
