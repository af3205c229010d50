//! Reflink probe: can a file in one directory be a reflink of a file in another?
//!
//! Why: the pool refuses (by default) a filesystem that would make every start a full
//! copy. Strategy: as Qubes' `is_reflink_supported`, clone real bytes: an unnamed
//! O_TMPFILE file holding a few bytes in the source directory, another in the destination
//! directory, then FICLONE. Where O_TMPFILE is unsupported, a named temp file that is
//! unlinked at once. The "not supported" errnos mean false; anything else is an error.
//! Both files are made in directory handles (`dir::Dir`). Cost: two file creations and
//! one ioctl; nothing is left on disk.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use crate::dir::{Dir, Entry};
use crate::error::{Error, Result};
use crate::sys;
use crate::tempname::TempFile;

/// Whether a file in `dst_dir` can be a reflink of a file in `src_dir` (default: `dst_dir`),
/// probed with unnamed temp files (O_TMPFILE) holding a few bytes of data.
pub fn is_reflink_supported(dst_dir: &Path, src_dir: Option<&Path>) -> Result<bool> {
    let dst = Dir::open_path(dst_dir)?;
    match src_dir {
        Some(src) => is_reflink_supported_in(&dst, &Dir::open_path(src)?),
        None => is_reflink_supported_in(&dst, &dst),
    }
}

/// `is_reflink_supported` on directory handles.
pub fn is_reflink_supported_in(dst_dir: &Dir, src_dir: &Dir) -> Result<bool> {
    let src = unnamed_file(src_dir)?;
    sys::pwrite_all(src.as_fd(), b"reflink-pool probe", 0)
        .map_err(|e| Error::os(e, "write").with_path(src_dir.path()))?;
    let dst = unnamed_file(dst_dir)?;
    match sys::ficlone(dst.as_fd(), src.as_fd()) {
        Ok(()) => Ok(true),
        Err(e) if sys::clone_unsupported(e) => Ok(false),
        Err(e) => Err(Error::os(e, "ioctl(FICLONE)")
            .with_path(src_dir.path())
            .with_dest(dst_dir.path())),
    }
}

/// A read-write file in `dir` with no name: O_TMPFILE, else a named temp file unlinked
/// right away.
fn unnamed_file(dir: &Dir) -> Result<File> {
    let flags = OFlag::O_RDWR | OFlag::O_TMPFILE | OFlag::O_CLOEXEC;
    match openat(dir.fd(), ".", flags, Mode::from_bits_truncate(0o600)) {
        Ok(fd) => Ok(File::from(fd)),
        // O_TMPFILE unsupported by this filesystem (EOPNOTSUPP) or kernel (EISDIR/EINVAL).
        Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => {
            let target = Entry {
                dir: dir.try_clone()?,
                name: OsString::from(".reflink-probe"),
            };
            let tmp = TempFile::create(&target, 0o600)?;
            // Dropping the guard unlinks the name; the open file stays usable.
            tmp.file
                .try_clone()
                .map_err(|e| Error::io(e, "dup").with_path(tmp.tmp.shown()))
        }
        Err(e) => Err(Error::os(e, "open(O_TMPFILE)").with_path(dir.path())),
    }
}
