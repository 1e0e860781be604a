use hardened::Audited;

struct Credentials {
    token: String,
}

#[derive(Audited)]
enum Action {
    Login { user: String, credentials: Credentials },
}

fn main() {
    let _ = Credentials { token: String::new() }.token;
}
