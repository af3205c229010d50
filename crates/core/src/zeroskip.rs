//! CONTRACT (implementation pending).
//! Positional writes that leave all-zero blocks as holes (stream import).
use std::os::fd::BorrowedFd;
use crate::error::Result;

/// Write `buf` at `offset`, skipping every aligned `block`-sized all-zero block (which stay
/// holes in a file created sparse). Returns the bytes actually written.
pub fn write_skipping_zeros(fd: BorrowedFd, offset: u64, buf: &[u8], block: usize) -> Result<u64> {
    let _ = (fd, offset, buf, block);
    todo!()
}
