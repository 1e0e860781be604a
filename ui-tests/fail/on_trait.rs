use hardened::hardened;

#[hardened]
trait Tool {
    fn call(&self) -> u8;
}

struct Echo;

impl Tool for Echo {
    fn call(&self) -> u8 {
        1
    }
}

fn main() {
    Echo.call();
}
