//! Create a sparse file: `size` bytes, no data blocks, atomically and durably.
//!
//! Why: new and volatile VM images start empty; a hole reads as zeros and costs no
//! space. Strategy: temp file beside the target (in its directory handle), ftruncate to
//! `size`, then the usual fsync + rename + directory fsync (`TempFile::commit`). Cost:
//! constant, whatever the size. No cancellation: a few syscalls.

use std::path::Path;

use crate::dir::Entry;
use crate::durable;
use crate::error::{Error, Result};
use crate::tempname::TempFile;

/// Create (atomically, durably; mode 0600) a file of `size` bytes with no data blocks.
/// Creates the parent directory if missing; replaces an existing file.
pub fn create_sparse_file(path: &Path, size: u64) -> Result<()> {
    durable::mkdir_path(&durable::parent_dir(path))?;
    create_sparse_entry(&Entry::of_path(path)?, size)
}

/// `create_sparse_file` in a directory handle (the parent must exist).
pub fn create_sparse_entry(entry: &Entry, size: u64) -> Result<()> {
    let tmp = TempFile::create(entry, 0o600)?;
    tmp.file
        .set_len(size)
        .map_err(|e| Error::io(e, "ftruncate").with_path(entry.shown()))?;
    tmp.commit()
}
