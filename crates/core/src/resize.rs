//! CONTRACT (implementation pending).
use std::path::Path;
use crate::error::Result;

/// Truncate or extend `path` in place to `size` bytes (new space is a hole) and fsync it.
pub fn resize_file(path: &Path, size: u64) -> Result<()> {
    let _ = (path, size);
    todo!()
}
