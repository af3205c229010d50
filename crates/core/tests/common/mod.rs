//! Checks shared by the resolution tests (`tests/dir.rs` with openat2, `tests/dir_walk.rs`
//! with the per-component walk): each binary is its own process, so the global choice
//! of resolver and the umask of one do not leak into the other.

pub mod dir_checks;
