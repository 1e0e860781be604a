use hardened::Audited;

#[derive(Audited)]
#[audited(event = "ConfigurationChange")]
enum Setting {
    Timeout(u32),
    Limit(u32),
}

fn main() {}
