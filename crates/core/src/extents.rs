//! CONTRACT (implementation pending).
use std::os::fd::BorrowedFd;
use crate::error::Result;

/// A run of data `[offset, offset + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRun { pub offset: u64, pub len: u64 }

/// The data runs of an open file, found with SEEK_DATA/SEEK_HOLE (the whole file as
/// one run when the filesystem does not support them).
pub fn data_runs(fd: BorrowedFd, size: u64) -> Result<Vec<DataRun>> { let _ = (fd, size); todo!() }
