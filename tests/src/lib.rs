//! Behaviour tests of `#[hardened]`; the tests live in `tests/`.
