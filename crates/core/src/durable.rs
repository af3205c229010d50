//! Durable namespace operations: each op is followed by fsync of the directory
//! (both directories for a rename), so the change survives power loss.
//!
//! Why: a rename or link is only on disk once its directory is; the pool's crash
//! consistency (clean image is always the old or the new one) rests on these.
//! Every op acts on `dir::Entry`s (directory handle + one name), so nothing here walks a
//! path string; `mkdir_path` is the one path-based step, for the public primitives'
//! "create the parent directory" of files outside pools.
//! Costs: one directory fsync per directory touched (a journal commit on XFS/ext4).
//! No cancellation: every op is a handful of syscalls.

use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::{fchmod, fstat, Mode};

use crate::dir::{Dir, Entry, DIR_MODE};
use crate::error::{Error, Result};

/// Whether two handles name the same directory (one fsync is then enough).
fn same_dir(a: &Dir, b: &Dir) -> Result<bool> {
    let sa = fstat(a.fd()).map_err(|e| Error::os(e, "fstat").with_path(a.path()))?;
    let sb = fstat(b.fd()).map_err(|e| Error::os(e, "fstat").with_path(b.path()))?;
    Ok(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
}

/// linkat(2) `src` to `dst`, then fsync `dst`'s directory.
pub fn hardlink(src: &Entry, dst: &Entry) -> Result<()> {
    src.link_to(dst)?;
    dst.dir.fsync()
}

/// renameat(2) `src` over `dst`, then fsync both directories.
pub fn rename(src: &Entry, dst: &Entry) -> Result<()> {
    src.rename_to(dst)?;
    dst.dir.fsync()?;
    if !same_dir(&src.dir, &dst.dir)? {
        src.dir.fsync()?;
    }
    Ok(())
}

/// unlinkat(2) `entry` (ENOENT ignored), then fsync its directory. Returns whether it existed.
pub fn remove(entry: &Entry) -> Result<bool> {
    let removed = entry.unlink()?;
    if removed {
        entry.dir.fsync()?;
    }
    Ok(removed)
}

/// rmdir `entry` when it is empty, then fsync its parent; `false` when missing or not empty.
pub fn remove_dir(entry: &Entry) -> Result<bool> {
    let removed = entry.rmdir()?;
    if removed {
        entry.dir.fsync()?;
    }
    Ok(removed)
}

/// fsync a regular file (opened read-only, never a symlink, FIFO or device).
pub fn fsync_file(entry: &Entry) -> Result<()> {
    let f = entry.open_read()?;
    nix::unistd::fsync(f.as_fd()).map_err(|e| Error::os(e, "fsync").with_path(entry.shown()))
}

/// mkdir -p `path` by path (files outside pools), fsyncing each parent whose entry was
/// created. Existing components are followed like any tool does.
pub fn mkdir_path(path: &Path) -> Result<()> {
    // Find the missing ancestors, then create them top-down.
    let mut missing = Vec::new();
    let mut cur = Some(path);
    while let Some(p) = cur.filter(|p| !p.as_os_str().is_empty()) {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(Error::os(nix::errno::Errno::ENOTDIR, "mkdir").with_path(p)),
            Err(e) if e.kind() == ErrorKind::NotFound => missing.push(p),
            Err(e) => return Err(Error::io(e, "stat").with_path(p)),
        }
        cur = p.parent();
    }
    for dir in missing.into_iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => Dir::open_path(&parent_dir(dir))?.fsync()?,
            // Another process created it meanwhile: fine if it is a directory.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(Error::io(e, "mkdir").with_path(dir)),
        }
    }
    Ok(())
}

/// `Dir::open_root`, first creating the pool directory when it is missing: mode 0700
/// (fchmod, whatever the umask), its parent fsynced; missing parents as `mkdir_path`.
pub fn create_root(path: &Path) -> Result<Dir> {
    let parent = parent_dir(path);
    mkdir_path(&parent)?;
    let created = match nix::unistd::mkdir(path, Mode::from_bits_truncate(DIR_MODE)) {
        Ok(()) => true,
        Err(nix::errno::Errno::EEXIST) => false,
        Err(e) => return Err(Error::os(e, "mkdir").with_path(path)),
    };
    if created {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty())
            .map_err(|e| Error::os(e, "open").with_path(path))?;
        fchmod(fd.as_fd(), Mode::from_bits_truncate(DIR_MODE))
            .map_err(|e| Error::os(e, "fchmod").with_path(path))?;
        Dir::open_path(&parent)?.fsync()?;
    }
    Dir::open_root(path)
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent_dir(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}
