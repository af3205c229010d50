//! Resize a file in place: ftruncate, then fsync.
//!
//! Why: a running VM's dirty image grows or shrinks under its loop device (the pool then
//! calls `loopdev`). Extending adds a hole; shrinking drops the tail. Inside a pool the
//! file is a writable image: a regular file with one link (`Entry::open_for_write`).
//! Cost: constant (plus freeing blocks on shrink). No cancellation: two syscalls.

use std::path::Path;

use crate::dir::Entry;
use crate::error::{Error, Result};

/// Truncate or extend `path` in place to `size` bytes (new space is a hole) and fsync it.
pub fn resize_file(path: &Path, size: u64) -> Result<()> {
    resize_entry(&Entry::of_path(path)?, size)
}

/// `resize_file` through a directory handle.
pub fn resize_entry(entry: &Entry, size: u64) -> Result<()> {
    let f = entry.open_for_write()?;
    f.set_len(size)
        .map_err(|e| Error::io(e, "ftruncate").with_path(entry.shown()))?;
    f.sync_all()
        .map_err(|e| Error::io(e, "fsync").with_path(entry.shown()))
}
