use hardened::Audited;

#[derive(Audited)]
struct Login {
    #[audited(user_id, redact)]
    user: String,
}

fn main() {}
