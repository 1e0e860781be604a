use hardened::Audited;

#[derive(Audited)]
struct Signup {
    #[audited(redact = "sha256")]
    email: String,
}

fn main() {}
