//! The data runs of a sparse file, found with lseek(SEEK_DATA/SEEK_HOLE).
//!
//! Why: a sparse copy moves only data and leaves holes as holes; images of VMs are
//! mostly holes. Strategy: alternate SEEK_DATA and SEEK_HOLE from offset 0; ENXIO from
//! SEEK_DATA means no data after the offset; EINVAL means the filesystem does not know
//! these whence values, and then the whole file is one run. The runs come from an
//! iterator ([`data_runs`]), one at a time, so memory does not grow with fragmentation
//! (a VM controls its image's layout). Cost: two syscalls per run. No cancellation:
//! mapping is metadata only (callers check between runs).

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

/// The data runs of an open file within `[0, size)`, lazily, in ascending order (the
/// whole file as one run when the filesystem does not support SEEK_DATA). Errors carry no
/// path: callers add it. The iterator ends after the first error.
pub fn data_runs(fd: BorrowedFd<'_>, size: u64) -> DataRuns<'_> {
    // No file is larger than off_t allows: clamping makes every offset below fit lseek.
    let size = size.min(i64::MAX as u64);
    DataRuns { fd, size, pos: 0 }
}

/// Iterator of [`DataRun`]s; see [`data_runs`].
pub struct DataRuns<'a> {
    fd: BorrowedFd<'a>,
    size: u64,
    /// Next offset to look at (below `size`, so within off_t); `size` once done.
    pos: u64,
}

impl DataRuns<'_> {
    fn next_run(&mut self) -> Result<Option<DataRun>> {
        let run = next_run(self.fd, self.pos, self.size)?;
        if let Some(r) = run {
            self.pos = r.offset + r.len;
        }
        Ok(run)
    }
}

/// The first data run at or after `pos` within `[pos, size)` (lseek SEEK_DATA, then
/// SEEK_HOLE); None when only holes follow. A filesystem without these whence values
/// (EINVAL) gets the rest of the file as one run. For a walk that owns its file (no
/// borrowed iterator), e.g. the send diff.
pub fn next_run(fd: BorrowedFd, pos: u64, size: u64) -> Result<Option<DataRun>> {
    // No file is larger than off_t allows: clamping makes every offset below fit lseek.
    let size = size.min(i64::MAX as u64);
    if pos >= size {
        return Ok(None);
    }
    let rest = Some(DataRun {
        offset: pos,
        len: size - pos,
    });
    let data = match lseek(fd, pos as libc::off_t, Whence::SeekData) {
        Ok(d) => d as u64,
        // No data at or after `pos`.
        Err(Errno::ENXIO) => return Ok(None),
        // SEEK_DATA unknown here: treat everything from `pos` as data.
        Err(Errno::EINVAL) => return Ok(rest),
        Err(e) => return Err(Error::os(e, "lseek(SEEK_DATA)")),
    };
    if data >= size {
        return Ok(None);
    }
    let hole = match lseek(fd, data as libc::off_t, Whence::SeekHole) {
        Ok(h) => h as u64,
        // The file shrank between the two calls: the rest is gone.
        Err(Errno::ENXIO) => size,
        Err(Errno::EINVAL) => return Ok(rest),
        Err(e) => return Err(Error::os(e, "lseek(SEEK_HOLE)")),
    }
    .min(size);
    Ok((hole > data).then_some(DataRun {
        offset: data,
        len: hole - data,
    }))
}

impl Iterator for DataRuns<'_> {
    type Item = Result<DataRun>;

    fn next(&mut self) -> Option<Result<DataRun>> {
        match self.next_run() {
            Ok(Some(run)) => Some(Ok(run)),
            Ok(None) => {
                self.pos = self.size;
                None
            }
            Err(e) => {
                self.pos = self.size;
                Some(Err(e))
            }
        }
    }
}

/// The data runs from offset `pos` on (a run containing `pos` is clipped to start there).
pub fn data_runs_from(fd: BorrowedFd<'_>, pos: u64, size: u64) -> DataRuns<'_> {
    let size = size.min(i64::MAX as u64);
    DataRuns {
        fd,
        size,
        pos: pos.min(size),
    }
}
