use hardened::hardened;

const FOUND: bool = true;

#[hardened(ok_if = FOUND)]
fn fetch(path: &str) -> u16 {
    if path == "/" { 200 } else { 503 }
}

fn main() {
    fetch("/");
}
