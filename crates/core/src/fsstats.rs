//! Size and use of the filesystem holding a directory (statvfs).
//!
//! Why: pool usage reports (`usageDetails`) and the space guard (`minFree`). Strategy: one fstatvfs of the directory
//! handle (`fs_stats` opens it by path; a pool passes the handle it holds,
//! `fs_stats_of_pool`); sizes in units of `f_frsize` (the fragment size statvfs counts
//! blocks in). No cancellation.

use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::fstat;
use nix::sys::statvfs::fstatvfs;

use crate::dir::Dir;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    /// Total bytes of the filesystem (f_blocks * f_frsize).
    pub size: u64,
    /// Used bytes ((f_blocks - f_bfree) * f_frsize).
    pub used: u64,
    /// Bytes an unprivileged writer can still allocate (f_bavail * f_frsize), as `df` shows.
    pub available: u64,
}

pub fn fs_stats(dir: &Path) -> Result<FsStats> {
    fs_stats_of(&Dir::open_path(dir)?)
}

/// `fs_stats` of an open directory.
pub fn fs_stats_of(dir: &Dir) -> Result<FsStats> {
    let st = fstatvfs(dir.fd()).map_err(|e| Error::os(e, "statvfs").with_path(dir.path()))?;
    let frsize = st.fragment_size() as u64;
    let blocks = st.blocks() as u64;
    let free = st.blocks_free() as u64;
    let available = st.blocks_available() as u64;
    Ok(FsStats {
        size: blocks * frsize,
        used: blocks.saturating_sub(free) * frsize,
        available: available * frsize,
    })
}

/// `fs_stats_of` a pool's directory handle, ENOENT once the directory was removed (its
/// handle then has no link left): what asking by its path would answer, so that a
/// pool whose directory is gone reports no usage rather than the filesystem's.
pub fn fs_stats_of_pool(dir: &Dir) -> Result<FsStats> {
    let st = fstat(dir.fd()).map_err(|e| Error::os(e, "fstat").with_path(dir.path()))?;
    if st.st_nlink == 0 {
        return Err(Error::os(Errno::ENOENT, "statvfs").with_path(dir.path()));
    }
    fs_stats_of(dir)
}
