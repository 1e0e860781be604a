use hardened::hardened;

fn zero(_: ()) -> u32 {
    0
}

// Nothing can fail, so there is nothing to fall back from.
#[hardened(fallback = zero)]
fn count(items: &[u8]) -> u32 {
    u32::try_from(items.len()).unwrap_or(u32::MAX)
}

fn main() {
    count(&[1, 2]);
}
