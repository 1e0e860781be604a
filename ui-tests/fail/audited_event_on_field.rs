use hardened::Audited;

#[derive(Audited)]
enum Action {
    Search {
        #[audited(event = "Query")]
        query: String,
    },
}

fn main() {}
