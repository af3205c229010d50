//! Resolution beneath a pool root with the per-component `O_NOFOLLOW | O_DIRECTORY` walk
//! (what a kernel without openat2 gets): the same checks as `tests/dir.rs`.

mod common;

#[test]
fn resolution_with_the_per_component_walk() {
    reflink_pool_core::dir::disable_openat2();
    common::dir_checks::all();
}
