//! CONTRACT (implementation pending).
use std::path::Path;
use crate::error::Result;

/// Create (atomically, durably; mode 0600) a file of `size` bytes with no data blocks.
/// Creates the parent directory if missing; replaces an existing file.
pub fn create_sparse_file(path: &Path, size: u64) -> Result<()> {
    let _ = (path, size);
    todo!()
}
