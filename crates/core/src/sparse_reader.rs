//! Reading a sparse file as a stream without reading its holes (stream export).
//!
//! Why: a VM image is mostly holes; reading them returns zeros the disk never held, and
//! collecting the file's whole data-run map costs memory in proportion to its
//! fragmentation (which the VM controls). Strategy: walk the data runs one at a time
//! (`extents::next_run`), keeping the runs of the next `AHEAD_BYTES` of data (at most
//! `AHEAD_RUNS` runs) known ahead of the reader, each hinted to the kernel
//! (POSIX_FADV_WILLNEED: readahead restarts at every hole, so a fragmented image would
//! otherwise be read one small synchronous read per run). Each
//! `read` fills the caller's buffer from the current offset with pread of the data, and
//! with zeros for the holes shorter than `HOLE_MIN` that fall inside it; it stops at a
//! hole of `HOLE_MIN` or more and reports that hole's length instead, which the caller
//! produces from memory. Cost: two lseeks and one fadvise per data run, one pread per run
//! piece; memory is the caller's buffer plus `AHEAD_RUNS` runs (16 KiB), whatever the
//! file's size or layout.
//! Cancellation: between `read` calls (the caller's); one call reads at most one buffer.
//! `write_to` drives the reader itself into a pipe, FIFO or other descriptor (the CLI's
//! stdout) with write(2), holes from one zero buffer: the whole export is one task, and no
//! byte crosses into JavaScript. It checks its `Control` before every write and at least
//! every `POLL_MS` while the consumer does not read, so an abort ends a stalled export (a
//! pipe is written through a non-blocking description of its own; a blocking socket is
//! the one descriptor a stalled reader can still hold until it reads or goes away).

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::control::Control;

use crate::copy::read_ahead;
use crate::error::{codes, Error, Result};
use crate::extents::{next_run, DataRun};

/// Holes at least this long end a `read` and are reported, not zero-filled.
pub const HOLE_MIN: u64 = 64 << 10;
/// Data known (and hinted to the kernel) ahead of the reader: this many bytes of runs...
const AHEAD_BYTES: u64 = 16 << 20;
/// ...in at most this many runs.
const AHEAD_RUNS: usize = 1024;
/// `write_to`: the buffer one `read` fills (and the longest single write of zeros).
const WRITE_BUF: usize = 2 << 20;
/// `write_to`: the pipe buffer asked for (the unprivileged maximum, as the stream import's pump).
const PIPE_SIZE: i32 = 1 << 20;
/// `write_to`: how long it waits for the consumer before checking cancellation again.
const POLL_MS: u16 = 100;

/// What one `read` produced: `data` bytes at the start of the buffer (holes shorter than
/// `HOLE_MIN` included as zeros), then `hole` bytes of zeros not in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub data: usize,
    pub hole: u64,
}

/// A reader of `[start, end)` of an open file.
pub struct SparseReader {
    file: File,
    pos: u64,
    end: u64,
    /// Runs ending after `pos`, in order (see `AHEAD_BYTES`, `AHEAD_RUNS`).
    ahead: VecDeque<DataRun>,
    /// The bytes of the runs in `ahead`.
    ahead_bytes: u64,
    /// Where the next `next_run` lookup starts (the end of the last run found).
    scan: u64,
    /// No data after the last run in `ahead`.
    scan_done: bool,
}

impl SparseReader {
    /// Read `[start, end)` of `file` (`end` clipped to the file's size at this call).
    pub fn new(file: File, start: u64, end: u64) -> Result<SparseReader> {
        let size = file.metadata().map_err(|e| Error::io(e, "fstat"))?.len();
        let end = end.min(size);
        let pos = start.min(end);
        Ok(SparseReader {
            file,
            pos,
            end,
            ahead: VecDeque::new(),
            ahead_bytes: 0,
            scan: pos,
            scan_done: false,
        })
    }

    /// Offset of the next byte `read` produces.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Offset where the stream ends.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Find runs until `AHEAD_BYTES` of data (or `AHEAD_RUNS` runs) are known, or there are
    /// no more, hinting each to the kernel.
    fn fill_ahead(&mut self) -> Result<()> {
        while !self.scan_done && self.ahead.len() < AHEAD_RUNS && self.ahead_bytes < AHEAD_BYTES {
            match next_run(self.file.as_fd(), self.scan, self.end)? {
                Some(run) => {
                    read_ahead(self.file.as_fd(), run);
                    self.scan = run.offset + run.len;
                    self.ahead_bytes += run.len;
                    self.ahead.push_back(run);
                }
                None => self.scan_done = true,
            }
        }
        Ok(())
    }

    /// The first run ending after `pos`, or `None` when only holes are left.
    fn current(&mut self) -> Result<Option<DataRun>> {
        while let Some(done) = self.ahead.front().filter(|r| r.offset + r.len <= self.pos) {
            self.ahead_bytes -= done.len;
            self.ahead.pop_front();
        }
        // Top up once half the window is consumed, so the hints stay ahead of the reads.
        if self.ahead.len() < AHEAD_RUNS / 2 && self.ahead_bytes < AHEAD_BYTES / 2 {
            self.fill_ahead()?;
        }
        Ok(self.ahead.front().copied())
    }

    /// Fill `buf` from the current offset (see the module note). A `Segment` of 0 + 0
    /// means the end.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Segment> {
        let mut n = 0usize;
        while n < buf.len() && self.pos < self.end {
            let room = (buf.len() - n) as u64;
            let Some(run) = self.current()? else {
                let hole = self.end - self.pos;
                return Ok(self.hole_or_fill(buf, &mut n, hole, room));
            };
            if run.offset > self.pos {
                let hole = run.offset - self.pos;
                if hole >= HOLE_MIN {
                    self.pos += hole;
                    return Ok(Segment { data: n, hole });
                }
                let fill = hole.min(room) as usize;
                buf[n..n + fill].fill(0);
                n += fill;
                self.pos += fill as u64;
                continue;
            }
            let want = (run.offset + run.len - self.pos).min(room) as usize;
            let got = self.pread(&mut buf[n..n + want])?;
            n += got;
            self.pos += got as u64;
        }
        Ok(Segment { data: n, hole: 0 })
    }

    /// The trailing hole: reported when long, else zero-filled into the buffer.
    fn hole_or_fill(&mut self, buf: &mut [u8], n: &mut usize, hole: u64, room: u64) -> Segment {
        if hole >= HOLE_MIN || hole > room {
            self.pos += hole;
            return Segment { data: *n, hole };
        }
        buf[*n..*n + hole as usize].fill(0);
        *n += hole as usize;
        self.pos += hole;
        Segment { data: *n, hole: 0 }
    }

    /// Write the rest of the range into `out` (see the module note); returns the bytes
    /// written. Progress: bytes written, of the range's length. A consumer that went
    /// away is the `EPIPE` of write (Node ignores SIGPIPE, so it is an error, not a signal).
    pub fn write_to(&mut self, out: BorrowedFd, ctl: &Control) -> Result<u64> {
        let own = nonblocking_pipe(out);
        let out = own.as_ref().map_or(out, |f| f.as_fd());
        // Fewer, larger writes into a pipe; anything else (a file, a socket): nothing to do.
        let _ = fcntl(out, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let total = self.end - self.pos;
        let mut buf = vec![0u8; WRITE_BUF];
        let zeros = vec![0u8; WRITE_BUF];
        let mut done = 0u64;
        ctl.report(0, total);
        loop {
            ctl.check()?;
            let seg = self.read(&mut buf)?;
            if seg.data == 0 && seg.hole == 0 {
                return Ok(done);
            }
            write_all(out, &buf[..seg.data], ctl)?;
            done += seg.data as u64;
            let mut hole = seg.hole;
            while hole > 0 {
                let n = hole.min(WRITE_BUF as u64) as usize;
                write_all(out, &zeros[..n], ctl)?;
                hole -= n as u64;
                done += n as u64;
            }
            ctl.report(done, total);
        }
    }

    /// One pread at `pos` (retried on EINTR); 0 bytes is a source that shrank.
    fn pread(&self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match nix::sys::uio::pread(self.file.as_fd(), buf, self.pos as libc::off_t) {
                Ok(0) => {
                    return Err(Error::lib(
                        codes::ERR_SOURCE_CHANGED,
                        "read",
                        "the file shrank while it was being read",
                    ))
                }
                Ok(n) => return Ok(n),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::os(e, "read")),
            }
        }
    }
}

/// A pipe or FIFO `out` opened again, non-blocking, through /proc/self/fd: a new open
/// file description of the same pipe, so a blocking write into a full pipe cannot hold
/// the task past an abort, and the caller's description (perhaps its shell's stdout) keeps
/// its flags. None for anything else (a file must keep its shared offset; a socket cannot
/// be opened this way) or when /proc is missing: then `out` is written as it is.
fn nonblocking_pipe(out: BorrowedFd) -> Option<File> {
    let st = nix::sys::stat::fstat(out).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return None;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", out.as_raw_fd()))
        .ok()
}

/// Write all of `buf` to `out` at its current offset. A non-blocking descriptor (Node
/// makes its stdout pipe one) that is full is waited for with poll, at most `POLL_MS`
/// between checks of `ctl`.
fn write_all(out: BorrowedFd, mut buf: &[u8], ctl: &Control) -> Result<()> {
    while !buf.is_empty() {
        match nix::unistd::write(out, buf) {
            // write(2) of a non-empty buffer returns 0 only for a broken descriptor: don't spin.
            Ok(0) => return Err(Error::os(Errno::EIO, "write")),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                ctl.check()?;
                let mut fds = [PollFd::new(out, PollFlags::POLLOUT)];
                match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(Error::os(e, "poll")),
                }
            }
            Err(e) => return Err(Error::os(e, "write")),
        }
    }
    Ok(())
}
