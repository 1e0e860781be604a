use hardened::hardened;

fn failed(status: &u16) -> u16 {
    *status
}

#[hardened(error_if = failed)]
fn fetch(path: &str) -> u16 {
    if path == "/" { 200 } else { 503 }
}

fn main() {
    fetch("/");
}
