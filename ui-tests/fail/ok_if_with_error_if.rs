use hardened::hardened;

fn found(status: &u16) -> bool {
    *status < 500
}

fn failed(status: &u16) -> bool {
    *status >= 500
}

#[hardened(ok_if = found, error_if = failed)]
fn fetch(path: &str) -> u16 {
    if path == "/" { 200 } else { 503 }
}

fn main() {
    fetch("/");
}
