use hardened::Audited;

#[derive(serde::Serialize)]
struct Account {
    id: u64,
}

#[derive(Audited)]
struct Login {
    #[audited(user_id)]
    account: Account,
}

fn main() {}
