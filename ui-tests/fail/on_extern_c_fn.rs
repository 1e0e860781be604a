use hardened::hardened;

#[hardened]
extern "C" fn callback(x: u32) -> u32 {
    x * 2
}

fn main() {
    callback(1);
}
