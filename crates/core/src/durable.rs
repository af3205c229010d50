//! Durable namespace operations: each op is followed by fsync of the directory
//! (both directories for a rename), so the change survives power loss.
//!
//! Why: a rename or link is only on disk once its directory is; the pool's crash
//! consistency (clean image is always the old or the new one) rests on these.
//! Costs: one directory fsync per directory touched (a journal commit on XFS/ext4).
//! No cancellation: every op is a handful of syscalls.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::tempname::TempFile;

/// The directory holding `path` (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// link(2) `src` to `dst`, then fsync `dst`'s directory.
pub fn hardlink(src: &Path, dst: &Path) -> Result<()> {
    std::fs::hard_link(src, dst).map_err(|e| Error::io(e, "link", src).with_dest(dst))?;
    fsync_dir(&parent_dir(dst))
}

/// rename(2) `src` over `dst`, then fsync both directories.
pub fn rename(src: &Path, dst: &Path) -> Result<()> {
    std::fs::rename(src, dst).map_err(|e| Error::io(e, "rename", src).with_dest(dst))?;
    let (from, to) = (parent_dir(src), parent_dir(dst));
    fsync_dir(&to)?;
    if from != to {
        fsync_dir(&from)?;
    }
    Ok(())
}

/// unlink(2) `path` (ENOENT ignored), then fsync its directory. Returns whether it existed.
pub fn remove(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            fsync_dir(&parent_dir(path))?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(e, "unlink", path)),
    }
}

/// mkdir -p `path`, fsyncing each parent whose entry was created.
pub fn mkdir(path: &Path) -> Result<()> {
    // Find the missing ancestors, then create them top-down.
    let mut missing = Vec::new();
    let mut cur = Some(path);
    while let Some(p) = cur.filter(|p| !p.as_os_str().is_empty()) {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(Error::sys(nix::errno::Errno::ENOTDIR, "mkdir", p)),
            Err(e) if e.kind() == ErrorKind::NotFound => missing.push(p),
            Err(e) => return Err(Error::io(e, "stat", p)),
        }
        cur = p.parent();
    }
    for dir in missing.into_iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => fsync_dir(&parent_dir(dir))?,
            // Another process created it meanwhile: fine if it is a directory.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(Error::io(e, "mkdir", dir)),
        }
    }
    Ok(())
}

/// Write `data` to `path` atomically and durably (temp + fsync + rename + dir fsync), mode `mode`.
/// Creates the parent directory if missing.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    mkdir(&parent_dir(path))?;
    let tmp = TempFile::create(path, mode)?;
    crate::sys::pwrite_all(std::os::fd::AsFd::as_fd(&tmp.file), data, 0)
        .map_err(|e| Error::sys(e, "write", &tmp.path))?;
    tmp.commit()
}

/// fsync a file (opened read-only).
pub fn fsync_file(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(|e| Error::io(e, "open", path))?;
    f.sync_all().map_err(|e| Error::io(e, "fsync", path))
}

/// fsync a directory.
pub fn fsync_dir(path: &Path) -> Result<()> {
    // std opens with O_RDONLY, which works for directories; fsync then flushes its entries.
    fsync_file(path)
}
