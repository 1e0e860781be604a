use hardened::hardened;

#[hardened(ok_if = "found")]
fn fetch(path: &str) -> u16 {
    if path == "/" { 200 } else { 503 }
}

fn main() {
    fetch("/");
}
