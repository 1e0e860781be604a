use hardened::hardened;

trait Tool {
    #[hardened]
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
