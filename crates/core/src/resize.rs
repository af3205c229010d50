//! Resize a file in place: ftruncate, then fsync.
//!
//! Why: a running VM's dirty image grows or shrinks under its loop device (the pool then
//! calls `loopdev`). Extending adds a hole; shrinking drops the tail. Cost: constant
//! (plus freeing blocks on shrink). No cancellation: two syscalls.

use std::fs::OpenOptions;
use std::path::Path;

use crate::error::{Error, Result};

/// Truncate or extend `path` in place to `size` bytes (new space is a hole) and fsync it.
pub fn resize_file(path: &Path, size: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(e, "open", path))?;
    f.set_len(size)
        .map_err(|e| Error::io(e, "ftruncate", path))?;
    f.sync_all().map_err(|e| Error::io(e, "fsync", path))
}
