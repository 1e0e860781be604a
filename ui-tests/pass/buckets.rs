//! `buckets = [..]` replaces the histogram bounds of one function; integers are whole seconds.
use std::time::Duration;

use hardened::hardened;

#[hardened(buckets = [0.001, 0.01, 0.1, 1, 10])]
fn slow(x: u8) -> u8 {
    x
}

fn main() {
    assert_eq!(slow(1), 1);
    let site = hardened::sites().iter().find(|site| site.name() == "slow").expect("`slow` is registered");
    let bounds: Vec<Duration> = site.buckets().collect();
    assert_eq!(
        bounds,
        [
            Duration::from_millis(1),
            Duration::from_millis(10),
            Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(10),
        ]
    );
}
