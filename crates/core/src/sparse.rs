//! Create a sparse file: `size` bytes, no data blocks, atomically and durably.
//!
//! Why: new and volatile VM images start empty; a hole reads as zeros and costs no
//! space. Strategy: temp file beside the target, ftruncate to `size`, then the usual
//! fsync + rename + directory fsync (`TempFile::commit`). Cost: constant, whatever the
//! size. No cancellation: a few syscalls.

use std::path::Path;

use crate::durable;
use crate::error::{Error, Result};
use crate::tempname::TempFile;

/// Create (atomically, durably; mode 0600) a file of `size` bytes with no data blocks.
/// Creates the parent directory if missing; replaces an existing file.
pub fn create_sparse_file(path: &Path, size: u64) -> Result<()> {
    durable::mkdir(&durable::parent_dir(path))?;
    let tmp = TempFile::create(path, 0o600)?;
    tmp.file
        .set_len(size)
        .map_err(|e| Error::io(e, "ftruncate", path))?;
    tmp.commit()
}
