//! Thin syscall wrappers: the only module with `unsafe`.
//!
//! Why: FICLONE, LOOP_SET_CAPACITY and FIEMAP are ioctls that neither std nor nix wrap,
//! nix has no sync_file_range, and its readdir needs a second descriptor (getdents64).
//! Request numbers come from definitions, never hand-typed: FICLONE from `libc`,
//! LOOP_SET_CAPACITY and FS_IOC_FIEMAP from `linux-raw-sys` (generated from the kernel's
//! uapi headers for each architecture); nix's `*_bad!` macros turn them into functions.
//! Each wrapper borrows its fd, so the fd outlives the call. Costs: one syscall each,
//! FIEMAP one per batch of `FIEMAP_BATCH` extents. No cancellation: each call is short.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

nix::ioctl_write_int_bad!(ficlone_ioctl, libc::FICLONE);
nix::ioctl_none_bad!(
    loop_set_capacity_ioctl,
    linux_raw_sys::loop_device::LOOP_SET_CAPACITY
);
nix::ioctl_readwrite_bad!(fiemap_ioctl, linux_raw_sys::ioctl::FS_IOC_FIEMAP, FiemapBuf);

/// ioctl(FICLONE): make `dst` share all of `src`'s extents (`dst` becomes a reflink copy).
pub fn ficlone(dst: BorrowedFd, src: BorrowedFd) -> nix::Result<()> {
    // SAFETY: both fds are borrowed, hence open for the call; FICLONE takes the source fd
    // by value and reads or writes no user memory.
    unsafe { ficlone_ioctl(dst.as_raw_fd(), src.as_raw_fd()) }.map(drop)
}

/// ioctl(LOOP_SET_CAPACITY): make loop device `dev` re-read its backing file's size.
pub fn loop_set_capacity(dev: BorrowedFd) -> nix::Result<()> {
    // SAFETY: `dev` is borrowed, hence open; LOOP_SET_CAPACITY takes no argument.
    unsafe { loop_set_capacity_ioctl(dev.as_raw_fd()) }.map(drop)
}

/// sync_file_range(SYNC_FILE_RANGE_WRITE): start writeback of `[offset, offset + len)`
/// of `fd` without waiting for it. Only a hint that lets the disk work while the copy
/// goes on; durability still comes from the fsync that follows.
pub fn start_writeback(fd: BorrowedFd, offset: u64, len: u64) -> nix::Result<()> {
    let off = libc::off64_t::try_from(offset).map_err(|_| Errno::EFBIG)?;
    let len = libc::off64_t::try_from(len).map_err(|_| Errno::EFBIG)?;
    // SAFETY: `fd` is borrowed, hence open; the call takes integers only and touches no
    // user memory.
    let rc =
        unsafe { libc::sync_file_range(fd.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
    Errno::result(rc).map(drop)
}

/// Extents fetched per FIEMAP call (56 bytes each: 14 KiB per batch).
const FIEMAP_BATCH: usize = 256;

/// `struct fiemap` header from `<linux/fiemap.h>` (its flexible array follows it).
#[repr(C)]
#[derive(Default)]
struct FiemapHeader {
    fm_start: u64,
    fm_length: u64,
    fm_flags: u32,
    fm_mapped_extents: u32,
    fm_extent_count: u32,
    fm_reserved: u32,
}

/// `struct fiemap_extent` from `<linux/fiemap.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FiemapExtent {
    pub fe_logical: u64,
    pub fe_physical: u64,
    pub fe_length: u64,
    fe_reserved64: [u64; 2],
    pub fe_flags: u32,
    fe_reserved: [u32; 3],
}

/// The header with room for `FIEMAP_BATCH` extents, as one allocation the kernel fills.
#[repr(C)]
struct FiemapBuf {
    hdr: FiemapHeader,
    extents: [FiemapExtent; FIEMAP_BATCH],
}

// The uapi layout the request number was computed for.
const _: () = assert!(std::mem::size_of::<FiemapHeader>() == 32);
const _: () = assert!(std::mem::size_of::<FiemapExtent>() == 56);

pub use linux_raw_sys::ioctl::{
    FIEMAP_EXTENT_DATA_INLINE, FIEMAP_EXTENT_DATA_TAIL, FIEMAP_EXTENT_DELALLOC,
    FIEMAP_EXTENT_ENCODED, FIEMAP_EXTENT_LAST, FIEMAP_EXTENT_NOT_ALIGNED, FIEMAP_EXTENT_SHARED,
    FIEMAP_EXTENT_UNKNOWN, FIEMAP_EXTENT_UNWRITTEN, FIEMAP_FLAG_SYNC,
};

/// A reusable buffer for ioctl(FS_IOC_FIEMAP) batches: memory stays at one batch
/// (`FIEMAP_BATCH` extents) however many extents a file has.
pub struct FiemapBatch {
    buf: Box<FiemapBuf>,
}

impl Default for FiemapBatch {
    fn default() -> Self {
        FiemapBatch {
            buf: Box::new(FiemapBuf {
                hdr: FiemapHeader::default(),
                extents: [FiemapExtent::default(); FIEMAP_BATCH],
            }),
        }
    }
}

impl FiemapBatch {
    /// ioctl(FS_IOC_FIEMAP): the next batch of extents of `fd` at or after `start`; `flags`
    /// e.g. `FIEMAP_FLAG_SYNC`. Returns the extents and where the next batch starts (None
    /// when the map is complete).
    pub fn fetch(
        &mut self,
        fd: BorrowedFd,
        start: u64,
        flags: u32,
    ) -> nix::Result<(&[FiemapExtent], Option<u64>)> {
        let buf = &mut *self.buf;
        buf.hdr = FiemapHeader {
            fm_start: start,
            fm_length: u64::MAX - start,
            fm_flags: flags,
            fm_extent_count: FIEMAP_BATCH as u32,
            ..FiemapHeader::default()
        };
        // SAFETY: `buf` is a live, exclusively borrowed `struct fiemap` followed by
        // `fm_extent_count` extent slots, which bounds what the kernel writes.
        unsafe { fiemap_ioctl(fd.as_raw_fd(), buf) }?;
        let n = (buf.hdr.fm_mapped_extents as usize).min(FIEMAP_BATCH);
        let got = &buf.extents[..n];
        let next = match got.last() {
            Some(last) if last.fe_flags & FIEMAP_EXTENT_LAST == 0 && n == FIEMAP_BATCH => {
                let next = last.fe_logical.saturating_add(last.fe_length);
                // A zero-length extent would repeat forever; the map is complete enough.
                (next > start).then_some(next)
            }
            _ => None,
        };
        Ok((got, next))
    }
}

/// ioctl(FS_IOC_FIEMAP): every extent of `fd`, fetched and handed to `each` in batches of
/// at most `FIEMAP_BATCH` (memory stays bounded however fragmented the file is); `flags`
/// e.g. `FIEMAP_FLAG_SYNC` (flush dirty data first so delayed allocations show up).
pub fn fiemap(
    fd: BorrowedFd,
    flags: u32,
    mut each: impl FnMut(&[FiemapExtent]),
) -> nix::Result<()> {
    let mut batch = FiemapBatch::default();
    let mut start = 0u64;
    loop {
        let (got, next) = batch.fetch(fd, start, flags)?;
        each(got);
        match next {
            Some(n) => start = n,
            None => return Ok(()),
        }
    }
}

/// Whether an errno from FIEMAP means "this filesystem has no extent map".
pub fn fiemap_unsupported(e: Errno) -> bool {
    // EOPNOTSUPP: the filesystem has no fiemap operation (e.g. tmpfs, some FUSE).
    // ENOTTY: the ioctl is unknown for this file (old kernels, special files).
    matches!(e, Errno::EOPNOTSUPP | Errno::ENOTTY)
}

/// Whether FICLONE's errno means "cannot clone here" (fall back) rather than a failure.
pub fn clone_unsupported(e: Errno) -> bool {
    match e {
        // The filesystem has no reflink support (ext4, tmpfs, XFS without reflink=1).
        Errno::EOPNOTSUPP => true,
        // Not clonable as asked: different filesystem types, unaligned or special files.
        Errno::EINVAL => true,
        // Source and destination are on different mounts/filesystems.
        Errno::EXDEV => true,
        // Some filesystems (and older kernels) reject the source fd for clone with EBADF.
        Errno::EBADF => true,
        // The ioctl is unknown to this filesystem or driver (FUSE, NFS before 4.2, ...).
        Errno::ENOTTY => true,
        _ => false,
    }
}

/// pwrite(2) all of `buf` at `offset`, looping on short writes.
pub fn pwrite_all(fd: BorrowedFd, mut buf: &[u8], mut offset: u64) -> nix::Result<()> {
    while !buf.is_empty() {
        let at = libc::off_t::try_from(offset).map_err(|_| Errno::EFBIG)?;
        match nix::sys::uio::pwrite(fd, buf, at) {
            // A regular file never accepts 0 bytes without an error; don't spin.
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// getdents64(2) on the directory `dir` from its current offset into `buf`: the bytes
/// of `struct linux_dirent64` records filled (0 at the end). nix's readdir opens a
/// second descriptor per listing; a remove batch lists every VM directory it holds.
pub fn getdents64(dir: BorrowedFd, buf: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: `dir` is borrowed, hence open; `buf` is valid for writes of `buf.len()`
    // bytes for the call, and the kernel writes at most that many.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    Errno::result(n).map(|n| n as usize)
}
