use hardened::hardened;

struct Action;

#[hardened(kind = "reducer", audit = action)]
fn reduce(state: &mut u32, action: Action) {
    let _ = action;
    *state = 0;
}

fn main() {
    reduce(&mut 1, Action);
}
