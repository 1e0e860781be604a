use hardened::hardened;

#[hardened]
const fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    double(1);
}
