//! Positional writes that leave all-zero blocks as holes (stream import, `sparse: always`
//! copies).
//!
//! Why: an imported VM image is mostly zeros; writing them would allocate every block.
//! Strategy: split the bytes at `block` boundaries of the file offset; skip each full,
//! aligned block that is all zeros (it stays a hole in a file created sparse) and write
//! the rest as contiguous pwrite runs straight from the caller's buffer.
//! `write_skipping_zeros` writes the partial blocks at a buffer's edges as they are;
//! `ZeroSkipWriter` (a stream of buffers of any sizes, e.g. 64 KiB pipe reads) instead
//! carries a buffer's unaligned tail (less than one block, the only bytes it copies) over
//! to the next buffer, so the file is as sparse as if the stream had come in one piece.
//! `ZeroSkipWriter::pump` reads the stream itself from a descriptor (a pipe, FIFO or
//! file: the CLI's stdin), in reads of up to `PUMP_BUF` (a pipe's buffer is raised to
//! 1 MiB first), so no byte of it crosses into JavaScript.
//! Cost: one scan of the bytes plus one pwrite per non-zero run. Cancellation: between
//! calls; `pump` checks its `Control` at least every `POLL_MS` while it waits for input.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::control::Control;
use crate::error::{codes, Error, Result};
use crate::sys;

/// Most bytes one read of `pump` asks for.
const PUMP_BUF: usize = 1 << 20;
/// The pipe buffer `pump` asks for (the unprivileged maximum, /proc/sys/fs/pipe-max-size).
const PIPE_SIZE: i32 = 1 << 20;
/// How long `pump` waits for input before checking cancellation again.
const POLL_MS: u16 = 100;

/// Whether every byte of `b` is zero. Compares 64-byte groups without an early exit inside a
/// group, which the compiler turns into vector ORs (a plain `all` loop stays byte by byte).
pub fn is_zero(b: &[u8]) -> bool {
    let mut groups = b.chunks_exact(64);
    groups.all(|g| g.iter().fold(0u8, |acc, &x| acc | x) == 0)
        && groups.remainder().iter().all(|&x| x == 0)
}

fn check_block(block: usize) -> Result<()> {
    if block == 0 {
        return Err(Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "write",
            "block size must be positive",
        ));
    }
    Ok(())
}

/// Write `buf` at `offset`, skipping every aligned `block`-sized all-zero block (which stay
/// holes in a file created sparse). Returns the bytes actually written.
pub fn write_skipping_zeros(fd: BorrowedFd, offset: u64, buf: &[u8], block: usize) -> Result<u64> {
    let mut written = 0u64;
    for_each_nonzero_run(offset, buf, block, |at, run| {
        sys::pwrite_all(fd, run, offset + at as u64).map_err(|e| Error::os(e, "write"))?;
        written += run.len() as u64;
        Ok(())
    })?;
    Ok(written)
}

/// Call `f(at, run)` for each maximal run of `buf` (which sits at file offset `offset`)
/// that is not made of aligned all-zero `block`s, in order; `at` is the run's index in `buf`.
/// The partial blocks at the buffer's edges are always part of a run.
pub fn for_each_nonzero_run(
    offset: u64,
    buf: &[u8],
    block: usize,
    mut f: impl FnMut(usize, &[u8]) -> Result<()>,
) -> Result<()> {
    check_block(block)?;
    // Start of the pending (to be written) run within `buf`.
    let mut run_start = 0usize;
    let mut pos = 0usize;
    while pos < buf.len() {
        let abs = offset + pos as u64;
        let to_boundary = block - (abs % block as u64) as usize;
        let end = (pos + to_boundary).min(buf.len());
        let piece = &buf[pos..end];
        if piece.len() == block && is_zero(piece) {
            if run_start < pos {
                f(run_start, &buf[run_start..pos])?;
            }
            run_start = end;
        }
        pos = end;
    }
    if run_start < buf.len() {
        f(run_start, &buf[run_start..])?;
    }
    Ok(())
}

/// Sequential writer of a byte stream into a file created sparse, from offset 0: all-zero
/// aligned blocks stay holes wherever the stream's buffers happen to be cut.
pub struct ZeroSkipWriter {
    block: usize,
    /// File offset of the next byte of the stream.
    pos: u64,
    /// The stream's bytes since the last block boundary (less than one block).
    carry: Vec<u8>,
    /// Bytes really written so far (zero blocks excluded).
    pub written: u64,
}

impl ZeroSkipWriter {
    pub fn new(block: usize) -> Result<ZeroSkipWriter> {
        check_block(block)?;
        Ok(ZeroSkipWriter {
            block,
            pos: 0,
            carry: Vec::with_capacity(block),
            written: 0,
        })
    }

    /// File offset of the next byte (the stream's length so far).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Append `buf` to the stream.
    pub fn write(&mut self, fd: BorrowedFd, mut buf: &[u8]) -> Result<()> {
        if !self.carry.is_empty() {
            let take = (self.block - self.carry.len()).min(buf.len());
            self.carry.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            self.pos += take as u64;
            if self.carry.len() < self.block {
                return Ok(());
            }
            self.flush_carry(fd)?;
        }
        // `pos` is block-aligned here: write the whole blocks, keep the tail.
        let whole = buf.len() - buf.len() % self.block;
        self.written += write_skipping_zeros(fd, self.pos, &buf[..whole], self.block)?;
        self.pos += whole as u64;
        self.carry.extend_from_slice(&buf[whole..]);
        self.pos += (buf.len() - whole) as u64;
        Ok(())
    }

    /// Write the carried partial block, if any (the end of the stream, or a full block).
    pub fn finish(&mut self, fd: BorrowedFd) -> Result<()> {
        self.flush_carry(fd)
    }

    /// Read `input` to its end and append it all, refusing more than `limit` bytes in total
    /// (`ERR_INVALID_ARG_VALUE`, nothing past `limit` is written). Progress: the stream's
    /// position, of `limit`.
    pub fn pump(
        &mut self,
        input: BorrowedFd,
        out: BorrowedFd,
        limit: u64,
        ctl: &Control,
    ) -> Result<()> {
        // A larger pipe buffer means fewer, larger reads; not a pipe (a file): nothing to do.
        let _ = fcntl(input, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let mut buf = vec![0u8; PUMP_BUF];
        loop {
            ctl.check()?;
            // Up to the limit, plus one byte to see a stream that is longer than announced.
            let room = limit.saturating_sub(self.pos).saturating_add(1);
            let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            // Wait for input at most POLL_MS, so an abort is seen while the writer is idle
            // (a regular file is always ready; a hang-up is ready too: read sees the end).
            let mut fds = [PollFd::new(input, PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(Error::os(e, "poll")),
            }
            let n = match nix::unistd::read(input, &mut buf[..want]) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                // EAGAIN: a non-blocking descriptor (Node makes its stdin pipe one) that
                // poll woke for nothing.
                Err(Errno::EINTR | Errno::EAGAIN) => continue,
                Err(e) => return Err(Error::os(e, "read")),
            };
            if self.pos + n as u64 > limit {
                return Err(Error::lib(
                    codes::ERR_INVALID_ARG_VALUE,
                    "read",
                    format!("the stream is longer than the announced size of {limit} bytes"),
                ));
            }
            self.write(out, &buf[..n])?;
            ctl.report(self.pos, limit);
        }
    }

    fn flush_carry(&mut self, fd: BorrowedFd) -> Result<()> {
        let at = self.pos - self.carry.len() as u64;
        if !is_zero(&self.carry) {
            sys::pwrite_all(fd, &self.carry, at).map_err(|e| Error::os(e, "write"))?;
            self.written += self.carry.len() as u64;
        }
        self.carry.clear();
        Ok(())
    }
}
