//! `crate = ".."` lets a framework re-export `hardened` and have generated code name it through the
//! re-export.
mod framework {
    pub mod observe {
        pub use ::hardened::*;
    }
}

use framework::observe::hardened;

#[hardened(crate = "crate::framework::observe")]
fn through_reexport(x: u8) -> Result<u8, String> {
    Ok(x)
}

#[hardened(crate = "::hardened", kind = "tool")]
async fn absolute(x: u8) -> u8 {
    x
}

fn main() {
    assert_eq!(through_reexport(1), Ok(1));
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    assert_eq!(runtime.block_on(absolute(2)), 2);
}
