use hardened::hardened;

#[hardened]
struct Config {
    name: String,
}

fn main() {
    let config = Config { name: String::new() };
    drop(config.name);
}
