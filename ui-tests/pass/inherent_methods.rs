//! Inherent methods taking `&self`, `&mut self` and `self`, plus an associated function.
use hardened::hardened;

#[derive(Debug, Default)]
struct Counter {
    count: u32,
}

impl Counter {
    #[hardened]
    fn new() -> Self {
        Counter::default()
    }

    #[hardened]
    fn get(&self) -> u32 {
        self.count
    }

    #[hardened(kind = "reducer")]
    fn bump(&mut self, by: u32) -> u32 {
        self.count += by;
        self.count
    }

    #[hardened]
    fn into_inner(self) -> u32 {
        self.count
    }
}

fn main() {
    let mut counter = Counter::new();
    assert_eq!(counter.bump(2), 2);
    assert_eq!(counter.bump(3), 5);
    assert_eq!(counter.get(), 5);
    assert_eq!(counter.into_inner(), 5);
}
