use hardened::Audited;

#[derive(Audited)]
struct Login {
    user: String,
    #[audited(skip, redact)]
    password: String,
}

fn main() {}
