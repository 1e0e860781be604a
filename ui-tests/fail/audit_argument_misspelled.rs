use hardened::{Audited, hardened};

#[derive(serde::Serialize, Audited)]
enum Action {
    Reset,
}

#[hardened(kind = "reducer", audit = acton)]
fn reduce(state: &mut u32, action: Action) {
    let _ = action;
    *state = 0;
}

fn main() {
    reduce(&mut 1, Action::Reset);
}
