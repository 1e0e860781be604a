use hardened::hardened;

// Takes the value instead of a reference to it.
fn found(status: u16) -> bool {
    status < 500
}

#[hardened(ok_if = found)]
fn fetch(path: &str) -> u16 {
    if path == "/" { 200 } else { 503 }
}

fn main() {
    fetch("/");
}
