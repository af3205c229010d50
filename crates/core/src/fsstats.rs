//! CONTRACT (implementation pending).
use std::path::Path;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    /// Total bytes of the filesystem (f_blocks * f_frsize).
    pub size: u64,
    /// Used bytes ((f_blocks - f_bfree) * f_frsize).
    pub used: u64,
}

pub fn fs_stats(dir: &Path) -> Result<FsStats> { let _ = dir; todo!() }
