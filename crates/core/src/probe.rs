//! Reflink probe: can a file in one directory be a reflink of a file in another?
//!
//! Why: the pool refuses (by default) a filesystem that would make every start a full
//! copy. Strategy: as Qubes' `is_reflink_supported`, clone real bytes: an unnamed
//! O_TMPFILE file holding a few bytes in the source directory, another in the destination
//! directory, then FICLONE. Where O_TMPFILE is unsupported, a named temp file that is
//! unlinked at once. The "not supported" errnos mean false; anything else is an error.
//! Cost: two file creations and one ioctl; nothing is left on disk.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::sys;
use crate::tempname::TempFile;

/// Whether a file in `dst_dir` can be a reflink of a file in `src_dir` (default: `dst_dir`),
/// probed with unnamed temp files (O_TMPFILE) holding a few bytes of data.
pub fn is_reflink_supported(dst_dir: &Path, src_dir: Option<&Path>) -> Result<bool> {
    let src_dir = src_dir.unwrap_or(dst_dir);
    let src = unnamed_file(src_dir)?;
    sys::pwrite_all(src.as_fd(), b"reflink-pool probe", 0)
        .map_err(|e| Error::sys(e, "write", src_dir))?;
    let dst = unnamed_file(dst_dir)?;
    match sys::ficlone(dst.as_fd(), src.as_fd()) {
        Ok(()) => Ok(true),
        Err(e) if crate::copy::clone_unsupported(e) => Ok(false),
        Err(e) => Err(Error::sys(e, "ioctl(FICLONE)", src_dir).with_dest(dst_dir)),
    }
}

/// A read-write file in `dir` with no name: O_TMPFILE, else a named temp file unlinked
/// right away.
fn unnamed_file(dir: &Path) -> Result<File> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    match opened {
        Ok(f) => Ok(f),
        // O_TMPFILE unsupported by this filesystem (EOPNOTSUPP) or kernel (EISDIR/EINVAL).
        Err(e)
            if matches!(
                e.raw_os_error().map(Errno::from_raw),
                Some(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL)
            ) =>
        {
            let tmp = TempFile::create(&dir.join(".reflink-probe"), 0o600)?;
            // Dropping the guard unlinks the name; the open file stays usable.
            Ok(tmp
                .file
                .try_clone()
                .map_err(|e| Error::io(e, "dup", &tmp.path))?)
        }
        Err(e) => Err(Error::io(e, "open(O_TMPFILE)", dir)),
    }
}
