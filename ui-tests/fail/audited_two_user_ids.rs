use hardened::Audited;

#[derive(Audited)]
enum Action {
    Transfer {
        #[audited(user_id)]
        from: String,
        #[audited(user_id)]
        to: String,
        amount: u64,
    },
}

fn main() {}
