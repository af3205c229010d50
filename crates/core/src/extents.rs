//! The data runs of a sparse file, found with lseek(SEEK_DATA/SEEK_HOLE).
//!
//! Why: a sparse copy moves only data and leaves holes as holes; images of VMs are
//! mostly holes. Strategy: alternate SEEK_DATA and SEEK_HOLE from offset 0; ENXIO from
//! SEEK_DATA means no data after the offset; EINVAL means the filesystem does not know
//! these whence values, and then the whole file is one run. Cost: two syscalls per run.
//! No cancellation: mapping is metadata only.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};

use crate::error::{Error, Result};

/// A run of data `[offset, offset + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRun {
    pub offset: u64,
    pub len: u64,
}

/// The data runs of an open file within `[0, size)`, found with SEEK_DATA/SEEK_HOLE (the
/// whole file as one run when the filesystem does not support them). Errors carry no
/// path: callers add it.
pub fn data_runs(fd: BorrowedFd, size: u64) -> Result<Vec<DataRun>> {
    let mut runs = Vec::new();
    let mut pos = 0u64;
    while let Some(run) = next_run(fd, pos, size)? {
        pos = run.offset + run.len;
        runs.push(run);
    }
    Ok(runs)
}

/// The first data run that ends after `pos`, clipped to `[pos, size)`; `None` when there is
/// no data in `[pos, size)`. The walk of `data_runs` one step at a time, for callers that
/// must not hold the whole map (a file can have millions of runs).
pub fn next_run(fd: BorrowedFd, pos: u64, size: u64) -> Result<Option<DataRun>> {
    if pos >= size {
        return Ok(None);
    }
    let data = match lseek(fd, pos as libc::off_t, Whence::SeekData) {
        Ok(d) => d as u64,
        // No data at or after `pos`.
        Err(Errno::ENXIO) => return Ok(None),
        // SEEK_DATA unknown here: treat everything as data.
        Err(Errno::EINVAL) => return Ok(whole(pos, size)),
        Err(e) => return Err(Error::os(e, "lseek(SEEK_DATA)")),
    };
    if data >= size {
        return Ok(None);
    }
    let hole = match lseek(fd, data as libc::off_t, Whence::SeekHole) {
        Ok(h) => h as u64,
        // The file shrank between the two calls: the rest is gone.
        Err(Errno::ENXIO) => size,
        Err(Errno::EINVAL) => return Ok(whole(pos, size)),
        Err(e) => return Err(Error::os(e, "lseek(SEEK_HOLE)")),
    }
    .min(size);
    if hole <= data {
        return Ok(None);
    }
    Ok(Some(DataRun {
        offset: data,
        len: hole - data,
    }))
}

/// `[pos, size)` as one run (a filesystem without SEEK_DATA).
fn whole(pos: u64, size: u64) -> Option<DataRun> {
    (pos < size).then_some(DataRun {
        offset: pos,
        len: size - pos,
    })
}
