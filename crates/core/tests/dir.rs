//! Resolution beneath a pool root with openat2 (Linux >= 5.6): see `common/dir_checks.rs`.

mod common;

#[test]
fn resolution_with_openat2() {
    common::dir_checks::all();
}
