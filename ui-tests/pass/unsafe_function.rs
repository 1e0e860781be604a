//! `unsafe fn` keeps its safety contract: callers still need `unsafe`, and the body its own blocks.
use hardened::hardened;

/// # Safety
///
/// `index` must be in bounds.
#[hardened]
unsafe fn get_unchecked(items: &[u8], index: usize) -> u8 {
    // SAFETY: the caller promises `index` is in bounds.
    unsafe { *items.get_unchecked(index) }
}

/// # Safety
///
/// `pointer` must be valid for reads. The body uses the whole function as its unsafe context, which
/// the wrapper must keep.
#[hardened]
#[allow(unsafe_op_in_unsafe_fn)]
unsafe fn read(pointer: *const u8) -> u8 {
    *pointer
}

struct Buffer(Vec<u8>);

impl Buffer {
    /// # Safety
    ///
    /// The buffer must not be empty.
    #[hardened]
    unsafe fn first_unchecked(&self) -> u8 {
        // SAFETY: the caller promises the buffer is not empty.
        unsafe { *self.0.get_unchecked(0) }
    }
}

fn main() {
    let items = [1, 2, 3];
    // SAFETY: 2 is in bounds.
    assert_eq!(unsafe { get_unchecked(&items, 2) }, 3);
    let byte = 7_u8;
    // SAFETY: `byte` is alive and readable.
    assert_eq!(unsafe { read(&raw const byte) }, 7);
    let buffer = Buffer(vec![9]);
    // SAFETY: the buffer holds one byte.
    assert_eq!(unsafe { buffer.first_unchecked() }, 9);
}
