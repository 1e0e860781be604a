//! Compile-time diagnostics of `#[hardened]`; the cases live in `pass/` and `fail/`.
