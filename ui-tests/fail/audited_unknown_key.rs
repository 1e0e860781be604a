use hardened::Audited;

#[derive(Audited)]
struct Login {
    user: String,
    #[audited(redcat)]
    password: String,
}

fn main() {}
