use hardened::hardened;

#[hardened]
enum State {
    Idle,
    Busy,
}

fn main() {
    let _ = [State::Idle, State::Busy];
}
