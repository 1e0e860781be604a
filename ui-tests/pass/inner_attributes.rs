//! An inner attribute of a function's body stays at the head of the new body, where it still applies.
#![deny(unused_variables)]

use hardened::hardened;

#[hardened]
fn sync_lookup() -> u32 {
    #![allow(unused_variables)]
    let unused = 1;
    2
}

#[hardened]
async fn async_lookup() -> u32 {
    #![allow(unused_variables)]
    let unused = 1;
    2
}

struct Store;

#[hardened]
impl Store {
    fn get(&self) -> u32 {
        #![allow(unused_variables)]
        let unused = 1;
        3
    }
}

fn main() {
    assert_eq!(sync_lookup(), 2);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    assert_eq!(runtime.block_on(async_lookup()), 2);
    assert_eq!(Store.get(), 3);
}
