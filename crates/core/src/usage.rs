//! CONTRACT (implementation pending).
use std::path::Path;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileUsage {
    /// Apparent size (st_size).
    pub size: u64,
    /// Allocated bytes (st_blocks * 512).
    pub allocated: u64,
    /// Bytes in extents flagged FIEMAP_EXTENT_SHARED.
    pub shared: u64,
    /// Bytes in extents not shared.
    pub exclusive: u64,
    /// Number of extents.
    pub extents: u64,
}

/// Usage of one file via fstat and FIEMAP.
pub fn file_usage(path: &Path) -> Result<FileUsage> {
    let _ = path;
    todo!()
}
