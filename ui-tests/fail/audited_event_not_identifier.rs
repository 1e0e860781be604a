use hardened::Audited;

#[derive(Audited)]
#[audited(event = "user login")]
struct Login {
    user: String,
}

fn main() {}
