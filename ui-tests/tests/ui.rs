//! Compile tests of `#[hardened]`: every case in `pass/` builds and runs, every case in `fail/` fails
//! to build with exactly the diagnostics in its `.stderr` file.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p hardened-ui-tests`, then read
//! every changed `.stderr`: each one is the specification of a message.

#[test]
fn ui() {
    // Cargo runs integration tests from the package directory and trybuild expands these globs against
    // the working directory, so they are relative to `ui-tests/`.
    let cases = trybuild::TestCases::new();
    cases.pass("pass/*.rs");
    cases.compile_fail("fail/*.rs");
}
