//! Positional writes that leave all-zero blocks as holes (stream import).
//!
//! Why: an imported VM image is mostly zeros; writing them would allocate every block.
//! Strategy: split the buffer at `block` boundaries of the file offset; skip each full,
//! aligned block that is all zeros (it stays a hole in a file created sparse) and write
//! the rest as contiguous pwrite runs. Partial blocks at the edges are always written,
//! so a misaligned caller gets a correct (if less sparse) file. Cost: one scan of the
//! buffer plus one pwrite per non-zero run. The caller checks cancellation between calls.

use std::os::fd::BorrowedFd;

use crate::error::{codes, Error, Result};
use crate::sys;

/// Write `buf` at `offset`, skipping every aligned `block`-sized all-zero block (which stay
/// holes in a file created sparse). Returns the bytes actually written.
pub fn write_skipping_zeros(fd: BorrowedFd, offset: u64, buf: &[u8], block: usize) -> Result<u64> {
    if block == 0 {
        return Err(Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "write",
            "block size must be positive",
        ));
    }
    let mut written = 0u64;
    // Start of the pending (to be written) run within `buf`.
    let mut run_start = 0usize;
    let mut pos = 0usize;
    while pos < buf.len() {
        let abs = offset + pos as u64;
        let to_boundary = block - (abs % block as u64) as usize;
        let end = (pos + to_boundary).min(buf.len());
        let piece = &buf[pos..end];
        if piece.len() == block && piece.iter().all(|&b| b == 0) {
            written += flush(fd, offset, &buf[run_start..pos], run_start)?;
            run_start = end;
        }
        pos = end;
    }
    written += flush(fd, offset, &buf[run_start..], run_start)?;
    Ok(written)
}

fn flush(fd: BorrowedFd, offset: u64, run: &[u8], at: usize) -> Result<u64> {
    if run.is_empty() {
        return Ok(0);
    }
    sys::pwrite_all(fd, run, offset + at as u64).map_err(|e| Error::os(e, "write"))?;
    Ok(run.len() as u64)
}
