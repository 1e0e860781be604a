use hardened::Audited;

#[derive(Audited)]
struct Login {
    #[audited(redact)]
    #[audited(redact = "hash")]
    password: String,
}

fn main() {}
