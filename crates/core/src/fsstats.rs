//! Size and use of the filesystem holding a directory (statvfs).
//!
//! Why: pool usage reports (`usageDetails`). Strategy: one statvfs; sizes in units of
//! `f_frsize` (the fragment size statvfs counts blocks in). No cancellation.

use std::path::Path;

use nix::sys::statvfs::statvfs;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    /// Total bytes of the filesystem (f_blocks * f_frsize).
    pub size: u64,
    /// Used bytes ((f_blocks - f_bfree) * f_frsize).
    pub used: u64,
}

pub fn fs_stats(dir: &Path) -> Result<FsStats> {
    let st = statvfs(dir).map_err(|e| Error::sys(e, "statvfs", dir))?;
    let frsize = st.fragment_size() as u64;
    let blocks = st.blocks() as u64;
    let free = st.blocks_free() as u64;
    Ok(FsStats {
        size: blocks * frsize,
        used: blocks.saturating_sub(free) * frsize,
    })
}
