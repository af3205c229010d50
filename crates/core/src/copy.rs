//! Durable file copy: `dst` becomes a copy of `src`, atomically (temp file + rename) and
//! durably (fsync of the file, then of the directory).
//!
//! Strategy order (as Rust std's `kernel_copy` and GNU cp):
//! 1. ioctl(FICLONE): O(metadata), shares extents (XFS with reflink, btrfs).
//! 2. Sparse copy: map the data runs with SEEK_DATA/SEEK_HOLE and read each through one
//!    reused 1 MiB buffer; its all-zero blocks (the destination's st_blksize) are not
//!    written and stay holes, as Qubes' `cp --sparse=always` leaves them (`zeroskip`), and
//!    the rest is written with copy_file_range (from the page cache the read just filled;
//!    the kernel may offload it) ...
//! 3. ... or, where the kernel refuses that pair of files (EXDEV across filesystems), pwrite.
//!
//! `reflink: never` skips 1 and copy_file_range: the kernel implements copy_file_range with
//! a remap (a reflink) wherever the filesystem can clone, which `never` rules out.
//! `sparse: always` (like `qemu-img convert -S`) does the same, for fully allocated raw
//! files on a filesystem that could clone them: a clone would keep their zeros allocated.
//!
//! The temp file is `ftruncate`d to the final size first, so holes stay holes in 2 and 3.
//! Costs: 1 is a few syscalls; 2 and 3 read every data byte once (never a hole) and write
//! only the non-zero blocks.
//! In 2 and 3 the kernel is asked (POSIX_FADV_WILLNEED) to read the next 16 runs ahead:
//! readahead restarts at every hole, so scattered runs would each start with a blocking read.
//! The data runs are walked lazily (`extents::data_runs`) twice: once to total them for
//! progress, once to copy, with a window of `READAHEAD_RUNS` runs: memory stays bounded
//! however fragmented the source is.
//! Every file is opened through a directory handle (`dir::Entry`): the source must be a
//! regular file (a FIFO or device is refused before it is opened, so nothing blocks).
//! Cancellation: `Control::check` runs before every buffer (at most one buffer is copied
//! after an abort); an aborted or failed
//! copy drops its `TempFile`, which unlinks it, so `dst` is never touched.
//! A source that shrinks mid-copy ends with `ERR_SOURCE_CHANGED` instead of spinning.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
use nix::sys::stat::{fstat, futimens};
use nix::sys::time::TimeSpec;

use crate::control::Control;
use crate::dir::Entry;
use crate::durable;
use crate::error::{codes, Error, Result};
use crate::extents::{data_runs, DataRun};
use crate::sys;
use crate::tempname::TempFile;
use crate::zeroskip;

/// The read buffer: the most copied between two abort checks.
const BUF: usize = 1 << 20;
/// How many data runs ahead of the copy the kernel is asked to read (`read_ahead`).
const READAHEAD_RUNS: usize = 16;
/// The most of one run a readahead hint covers (larger runs get the kernel's own readahead).
const READAHEAD_MAX: u64 = 16 << 20;
/// Bytes copied between two writeback starts (`RunCopier::start_writeback`).
const WRITEBACK_EVERY: u64 = 32 << 20;
/// Cleared once copy_file_range reported ENOSYS (kernel without it): skip it afterwards.
static HAS_COPY_FILE_RANGE: AtomicBool = AtomicBool::new(true);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReflinkMode {
    /// Clone when the filesystem can, else sparse copy.
    #[default]
    Auto,
    /// Clone or fail with `ERR_REFLINK_UNSUPPORTED`; never copy data.
    Always,
    /// Never clone or share extents: the sparse copy through pread/pwrite (copy_file_range
    /// is skipped too, because on XFS, btrfs and NFS the kernel serves it with a clone).
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SparseMode {
    /// A clone when the filesystem can; else holes stay holes and all-zero blocks of the
    /// data become holes too.
    #[default]
    Auto,
    /// Never a clone: holes and all-zero blocks of the data become holes (for fully
    /// allocated files on a filesystem that could clone them).
    Always,
}

/// Declares `CopyMethod`, its JS names and the list of them from one table, so
/// `as_str` and `ALL` (handed to JS and checked against `ts/copy.ts`) cannot drift.
macro_rules! copy_methods {
    ($($(#[$meta:meta])* $variant:ident => $name:literal,)*) => {
        /// How a copy was made.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum CopyMethod {
            $($(#[$meta])* $variant,)*
        }

        impl CopyMethod {
            /// Every method, in declaration order.
            pub const ALL: &[CopyMethod] = &[$(CopyMethod::$variant),*];

            /// The name used across the JS boundary (`COPY_METHODS` in `ts/copy.ts`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CopyMethod::$variant => $name,)*
                }
            }
        }
    };
}

copy_methods! {
    /// A clone (FICLONE): extents shared, no data moved.
    Reflink => "reflink",
    /// `copy_file_range` of the source's data runs.
    CopyRange => "copy-range",
    /// `pread`/`pwrite` of the source's data runs.
    ReadWrite => "read-write",
    /// An empty result (size 0), made without reading the source.
    Empty => "empty",
}

#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    pub reflink: ReflinkMode,
    /// Truncate or zero-extend the result to this size; `Some(0)` creates an empty file without cloning.
    pub size: Option<u64>,
    /// Give the result the source's mtime (ns precision).
    pub copy_mtime: bool,
    pub sparse: SparseMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOutcome {
    pub method: CopyMethod,
    /// Bytes of data moved (0 for a reflink or an empty result).
    pub bytes: u64,
}

/// Make `dst` a copy of `src`, atomically and durably (temp `<dst>~<random>` mode 0600,
/// fsync, rename, fsync dir). Creates `dst`'s parent directory if missing. For files
/// outside pools: both parents are resolved by path, then `copy_entry` does the work.
pub fn copy_file(src: &Path, dst: &Path, opts: &CopyOptions, ctl: &Control) -> Result<CopyOutcome> {
    ctl.check().map_err(|e| e.with_path(src).with_dest(dst))?;
    let src = Entry::of_path(src).map_err(|e| e.with_dest(dst))?;
    durable::mkdir_path(&durable::parent_dir(dst))?;
    let dst = Entry::of_path(dst)?;
    copy_entry(&src, &dst, opts, ctl)
}

/// `copy_file` on directory entries (inside a pool: both resolved beneath its root).
pub fn copy_entry(
    src: &Entry,
    dst: &Entry,
    opts: &CopyOptions,
    ctl: &Control,
) -> Result<CopyOutcome> {
    // Every failure below names both files, like Node's copyFile errors.
    let ctx = |e: Error| e.with_path(src.shown()).with_dest(dst.shown());
    ctl.check().map_err(ctx)?;
    let input = src.open_read().map_err(|e| e.with_dest(dst.shown()))?;
    let st = fstat(input.as_fd()).map_err(|e| ctx(Error::os(e, "fstat")))?;
    let src_size = u64::try_from(st.st_size).unwrap_or(0);
    let size = opts.size.unwrap_or(src_size);

    let tmp = TempFile::create(dst, 0o600)?;
    let outcome = if size == 0 {
        CopyOutcome {
            method: CopyMethod::Empty,
            bytes: 0,
        }
    } else {
        fill_sparse(
            input.as_fd(),
            &tmp.file,
            src_size,
            size,
            opts.reflink,
            opts.sparse,
            ctl,
        )
        .map_err(ctx)?
    };
    if opts.copy_mtime {
        let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
        futimens(tmp.file.as_fd(), &TimeSpec::UTIME_OMIT, &mtime)
            .map_err(|e| ctx(Error::os(e, "futimens")))?;
    }
    // Last chance to cancel before `dst` changes.
    ctl.check().map_err(ctx)?;
    tmp.commit()?;
    Ok(outcome)
}

/// Fill the temp file `out` (empty) with the first `size` bytes of the source (`src_size`
/// long), zero-extended past its end; holes and all-zero blocks stay holes.
pub(crate) fn fill(
    input: BorrowedFd,
    out: &File,
    src_size: u64,
    size: u64,
    mode: ReflinkMode,
    ctl: &Control,
) -> Result<CopyOutcome> {
    fill_sparse(input, out, src_size, size, mode, SparseMode::Auto, ctl)
}

/// `fill`, with `sparse: Always` never cloning.
fn fill_sparse(
    input: BorrowedFd,
    out: &File,
    src_size: u64,
    size: u64,
    mode: ReflinkMode,
    sparse: SparseMode,
    ctl: &Control,
) -> Result<CopyOutcome> {
    let len = src_size.min(size);
    let no_clone = sparse == SparseMode::Always;
    if no_clone && mode == ReflinkMode::Always {
        return Err(Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "copy",
            "sparse: 'always' reads the data to find zeros, which a reflink: 'always' clone never does",
        ));
    }
    if mode != ReflinkMode::Never && !no_clone {
        match sys::ficlone(out.as_fd(), input) {
            Ok(()) => {
                // Clone everything, then cut or extend: the tail beyond the source is a hole.
                // Same size: no ftruncate (on XFS it is a transaction of its own).
                if size != src_size {
                    out.set_len(size).map_err(|e| Error::io(e, "ftruncate"))?;
                }
                ctl.report(len, len);
                return Ok(CopyOutcome {
                    method: CopyMethod::Reflink,
                    bytes: 0,
                });
            }
            Err(e) if sys::clone_unsupported(e) => {
                if mode == ReflinkMode::Always {
                    return Err(Error::os(e, "ioctl(FICLONE)")
                        .with_code(codes::ERR_REFLINK_UNSUPPORTED)
                        .with_detail(
                            "the filesystem cannot reflink these files (reflink: always)",
                        ));
                }
            }
            Err(e) => return Err(Error::os(e, "ioctl(FICLONE)")),
        }
    }
    // Full size first, so that every range we do not write stays a hole.
    out.set_len(size).map_err(|e| Error::io(e, "ftruncate"))?;
    // Pass 1 totals the runs for progress; pass 2 copies them. Neither keeps more than
    // READAHEAD_RUNS runs.
    let mut total = 0u64;
    for run in data_runs(input, len) {
        total += run?.len;
    }
    let mut copier = RunCopier {
        input,
        out: out.as_fd(),
        ctl,
        done: 0,
        total,
        buf: Vec::new(),
        range: mode != ReflinkMode::Never
            && !no_clone
            && HAS_COPY_FILE_RANGE.load(Ordering::Relaxed),
        range_copied: false,
        zero_block: block_size(out)?,
        unflushed_from: 0,
        unflushed_bytes: 0,
    };
    ctl.report(0, total);
    // The runs hinted to the kernel and not copied yet (the next one is at the front).
    let mut runs = data_runs(input, len);
    let mut ahead = VecDeque::with_capacity(READAHEAD_RUNS);
    loop {
        while ahead.len() < READAHEAD_RUNS {
            let Some(run) = runs.next().transpose()? else {
                break;
            };
            read_ahead(input, run);
            ahead.push_back(run);
        }
        let Some(run) = ahead.pop_front() else {
            break;
        };
        copier.copy_run(run)?;
    }
    let method = if copier.range {
        CopyMethod::CopyRange
    } else {
        CopyMethod::ReadWrite
    };
    Ok(CopyOutcome {
        method,
        bytes: copier.done,
    })
}

/// Whether copy_file_range's errno (with nothing copied yet) means "use pread/pwrite".
fn copy_range_unsupported(e: Errno) -> bool {
    match e {
        // Cross-filesystem copies are refused by kernels >= 5.19 (and < 5.3).
        Errno::EXDEV => true,
        // Kernel older than 4.5, or a seccomp filter.
        Errno::ENOSYS => true,
        // The filesystem pair has no copy_file_range support.
        Errno::EOPNOTSUPP => true,
        // Some filesystems (e.g. FUSE, procfs-like) refuse the arguments for their files.
        Errno::EINVAL => true,
        _ => false,
    }
}

/// Moves data runs from `input` to `out` at the same offsets, with progress and abort.
struct RunCopier<'a> {
    input: BorrowedFd<'a>,
    out: BorrowedFd<'a>,
    ctl: &'a Control<'a>,
    done: u64,
    total: u64,
    buf: Vec<u8>,
    /// Still writing with copy_file_range (false once it fell back to pwrite).
    range: bool,
    /// copy_file_range has moved bytes (its refusal after that is an error, not a fallback).
    range_copied: bool,
    /// The block size whose all-zero blocks are not written.
    zero_block: usize,
    /// pread/pwrite: where the range not yet handed to writeback starts (runs are
    /// copied in offset order), and how many bytes were written in it.
    unflushed_from: u64,
    unflushed_bytes: u64,
}

impl RunCopier<'_> {
    fn copy_run(&mut self, run: DataRun) -> Result<()> {
        let end = run.offset + run.len;
        let mut off = run.offset;
        while off < end {
            self.ctl.check()?;
            let n = self.copy_chunk(off, (end - off).min(BUF as u64) as usize)?;
            off += n;
            self.done += n;
            self.ctl.report(self.done, self.total);
        }
        Ok(())
    }

    /// pread up to `want` bytes at `off` and write what is not all-zero blocks at the same
    /// offset (the zero blocks stay holes): with copy_file_range while the kernel takes it
    /// (the bytes were just read, so it copies from the page cache, without a second pass
    /// through user memory), else pwrite from the buffer.
    fn copy_chunk(&mut self, off: u64, want: usize) -> Result<u64> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(BUF, 0);
        let at = libc::off_t::try_from(off).map_err(|_| Error::os(Errno::EFBIG, "read"))?;
        let n = loop {
            match nix::sys::uio::pread(self.input, &mut buf[..want], at) {
                Ok(0) => return Err(source_changed()),
                Ok(n) => break n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::os(e, "read")),
            }
        };
        let written = zeroskip::for_each_nonzero_run(off, &buf[..n], self.zero_block, |i, run| {
            let start = off + i as u64;
            if self.range && self.copy_range(start, run.len() as u64)? {
                return Ok(());
            }
            sys::pwrite_all(self.out, run, start).map_err(|e| Error::os(e, "write"))
        });
        self.buf = buf;
        written?;
        if !self.range {
            self.start_writeback(off + n as u64, n as u64);
        }
        Ok(n as u64)
    }

    /// copy_file_range of `len` bytes at `off` (looping on short copies); false when the
    /// kernel refuses this pair of files before anything was copied (then pread/pwrite).
    fn copy_range(&mut self, off: u64, len: u64) -> Result<bool> {
        let start = i64::try_from(off).map_err(|_| Error::os(Errno::EFBIG, "copy_file_range"))?;
        let (mut off_in, mut off_out) = (start, start);
        let mut left = usize::try_from(len).unwrap_or(usize::MAX);
        while left > 0 {
            match nix::fcntl::copy_file_range(
                self.input,
                Some(&mut off_in),
                self.out,
                Some(&mut off_out),
                left,
            ) {
                Err(Errno::EINTR) => {}
                Ok(0) => return Err(source_changed()),
                Ok(n) => {
                    left -= n;
                    self.range_copied = true;
                }
                // Only before its first success: the kernel refuses a pair of files at once.
                Err(e) if !self.range_copied && copy_range_unsupported(e) => {
                    if e == Errno::ENOSYS {
                        HAS_COPY_FILE_RANGE.store(false, Ordering::Relaxed);
                    }
                    self.range = false;
                    return Ok(false);
                }
                Err(e) => return Err(Error::os(e, "copy_file_range")),
            }
        }
        Ok(true)
    }

    /// Count `written` bytes ending at `end`; once WRITEBACK_EVERY have gathered,
    /// start their writeback: the disk then writes while the copy reads on (another
    /// filesystem), instead of all of it in the final fsync: 9-13% faster from ext4
    /// into XFS (floor binary, page cache dropped, five rounds). Only for pread/pwrite:
    /// within one ext4, copy_file_range gained nothing beyond the noise. A hint: its
    /// failure is left to the fsync.
    fn start_writeback(&mut self, end: u64, written: u64) {
        self.unflushed_bytes += written;
        if self.unflushed_bytes >= WRITEBACK_EVERY {
            let _ = sys::start_writeback(self.out, self.unflushed_from, end - self.unflushed_from);
            self.unflushed_from = end;
            self.unflushed_bytes = 0;
        }
    }
}

/// Ask the kernel to start reading `run` (its first `READAHEAD_MAX` bytes) now:
/// sequential readahead restarts at every hole, so with scattered runs each one would
/// otherwise begin with a synchronous read. Only a hint: its failure changes nothing.
pub(crate) fn read_ahead(input: BorrowedFd, run: DataRun) {
    let len = run.len.min(READAHEAD_MAX);
    let (Ok(off), Ok(len)) = (i64::try_from(run.offset), i64::try_from(len)) else {
        return;
    };
    let _ = posix_fadvise(input, off, len, PosixFadviseAdvice::POSIX_FADV_WILLNEED);
}

/// The destination's preferred I/O block (st_blksize): the zero-detection granularity.
fn block_size(out: &File) -> Result<usize> {
    let st = fstat(out.as_fd()).map_err(|e| Error::os(e, "fstat"))?;
    Ok(usize::try_from(st.st_blksize).unwrap_or(4096).max(512))
}

fn source_changed() -> Error {
    Error::lib(
        codes::ERR_SOURCE_CHANGED,
        "copy",
        "the source file shrank while it was being copied",
    )
}
