//! Temp files `<target>~<random>` beside their target: the one place that builds them.
//!
//! Why: every durable write in the crate (copy, sparse create, JSON records) follows the
//! Qubes discipline: create a temp file beside the target (same directory, so the final
//! rename is atomic), fchmod, fill, fsync, rename over the target, fsync the directory.
//! The pool's recovery removes leftovers by the `~` in their name.
//! Strategy: the temp file is created in the target's directory handle (`dir::Entry`):
//! `openat(O_CREAT | O_EXCL | O_NOFOLLOW)`, retried on a name clash, and committed with
//! `renameat` + fsync of that same handle, so a directory swapped meanwhile cannot move
//! the file elsewhere. The random part is a 64-bit hash of time, pid and a counter keyed
//! by std's randomly seeded `RandomState`. `TempFile` unlinks itself when dropped before
//! `commit`, so an error or an abort anywhere leaves nothing behind. Cost: one open plus
//! fchmod; commit is fsync, rename, fsync of the directory. `TempIn` is the same temp
//! file for a group commit (`group_commit`): many temps share one directory handle and
//! are renamed without an fsync each, the batch's barrier making them durable.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, Mode};

use crate::dir::{Dir, Entry};
use crate::error::{Error, Result};

/// The separator between the target's name and the random part.
pub const TEMP_MARK: char = '~';

/// `<name>~<16 hex digits>`.
fn temp_name_for(target: &OsStr) -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one((nanos, std::process::id(), n));
    let mut name = target.to_os_string();
    name.push(format!("{TEMP_MARK}{random:016x}"));
    name
}

/// Create `<target>~<random>` in `dir` with O_EXCL and exactly `mode` (fchmod, so the
/// umask cannot change it), retried on a name clash: the one create of every temp file
/// (`TempFile`, `TempIn`). A failed fchmod unlinks the new file again.
fn create_in(dir: &Dir, target: &OsStr, mode: u32) -> Result<(File, OsString)> {
    let flags =
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut attempts = 0;
    loop {
        let name = temp_name_for(target);
        match openat(
            dir.fd(),
            name.as_os_str(),
            flags,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(fd) => {
                let file = File::from(fd);
                if let Err(e) = fchmod(file.as_fd(), Mode::from_bits_truncate(mode)) {
                    let _ = dir.unlink_name(&name);
                    return Err(Error::os(e, "fchmod").with_path(dir.shown(&name)));
                }
                return Ok((file, name));
            }
            Err(Errno::EEXIST) if attempts < 8 => attempts += 1,
            Err(e) => return Err(Error::os(e, "open").with_path(dir.shown(&name))),
        }
    }
}

/// A temp file beside its target, removed on drop unless committed.
pub struct TempFile<'a> {
    pub file: File,
    /// The temp file's own entry (a second handle on the target's directory).
    pub tmp: Entry,
    target: &'a Entry,
    armed: bool,
}

impl<'a> TempFile<'a> {
    /// Create `<target>~<random>` in the target's directory with O_EXCL and exactly `mode`
    /// (fchmod, so the umask cannot change it).
    pub fn create(target: &'a Entry, mode: u32) -> Result<TempFile<'a>> {
        let (file, name) = create_in(&target.dir, &target.name, mode)?;
        let tmp = TempFile {
            file,
            tmp: Entry {
                dir: target.dir.try_clone().inspect_err(|_| {
                    let _ = target.dir.unlink_name(&name);
                })?,
                name,
            },
            target,
            armed: true,
        };
        Ok(tmp)
    }

    /// fsync the file, rename it over the target, fsync the directory.
    pub fn commit(mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io(e, "fsync").with_path(self.tmp.shown()))?;
        self.tmp.rename_to(self.target)?;
        self.armed = false;
        self.target.dir.fsync()
    }
}

/// A temp file kept past the call that made it: a receive's own import (docs/design.md
/// §8.5), written over many calls and then renamed into place by the pool's commit, by
/// its name. Unlinked on drop until `keep` hands the name over to that commit.
#[derive(Debug)]
pub struct KeptTemp {
    pub tmp: Entry,
    armed: bool,
}

impl KeptTemp {
    /// The name is the caller's now (it renames or removes it): no unlink on drop.
    pub fn keep(&mut self) {
        self.armed = false;
    }
}

impl Drop for KeptTemp {
    fn drop(&mut self) {
        if self.armed {
            // Best effort, as for TempFile: recovery removes `~` files it finds later.
            let _ = self.tmp.unlink();
        }
    }
}

impl TempFile<'_> {
    /// Keep the file beyond the target's borrow: an open handle on it and the `KeptTemp`
    /// that owns its name. On failure the temp file is unlinked as on any drop.
    pub fn detach(mut self) -> Result<(File, KeptTemp)> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::io(e, "dup").with_path(self.tmp.shown()))?;
        let tmp = Entry {
            dir: self.tmp.dir.try_clone()?,
            name: self.tmp.name.clone(),
        };
        self.armed = false;
        Ok((file, KeptTemp { tmp, armed: true }))
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error being returned matters more than a failed cleanup,
            // and recovery removes `~` files the pool finds later.
            let _ = self.tmp.unlink();
        }
    }
}

/// A temp file in a directory that many temps share (a group commit's, `group_commit`:
/// one `Arc<Dir>` for all, not a dup per file), renamed over `target` in that same
/// directory without fsync (the caller's barrier makes it durable). Unlinked on drop
/// unless renamed.
pub struct TempIn {
    pub file: File,
    pub dir: Arc<Dir>,
    pub name: OsString,
    /// The name it is renamed to, in `dir`.
    pub target: OsString,
    armed: bool,
}

impl TempIn {
    /// Create `<target>~<random>` in `dir` (as `TempFile::create`, exactly `mode`).
    pub fn create(dir: &Arc<Dir>, target: &OsStr, mode: u32) -> Result<TempIn> {
        let (file, name) = create_in(dir, target, mode)?;
        Ok(TempIn {
            file,
            dir: Arc::clone(dir),
            name,
            target: target.to_os_string(),
            armed: true,
        })
    }

    /// The path shown in messages.
    pub fn shown(&self) -> PathBuf {
        self.dir.shown(&self.name)
    }

    /// renameat2 over the target (no fsync), refusing to replace an existing file when
    /// `noreplace` (RENAME_NOREPLACE).
    pub fn rename(&mut self, noreplace: bool) -> Result<()> {
        let flags = if noreplace {
            RenameFlags::RENAME_NOREPLACE
        } else {
            RenameFlags::empty()
        };
        let fd = self.dir.fd();
        renameat2(
            fd,
            self.name.as_os_str(),
            fd,
            self.target.as_os_str(),
            flags,
        )
        .map_err(|e| {
            Error::os(e, "rename")
                .with_path(self.shown())
                .with_dest(self.dir.shown(&self.target))
        })?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempIn {
    fn drop(&mut self) {
        if self.armed {
            // Best effort, as for TempFile: recovery removes `~` files it finds later.
            let _ = self.dir.unlink_name(&self.name);
        }
    }
}

/// Write `data` to `target` atomically and durably (temp + fsync + rename + dir fsync),
/// permission bits `mode`.
pub fn write_file(target: &Entry, data: &[u8], mode: u32) -> Result<()> {
    let tmp = TempFile::create(target, mode)?;
    crate::sys::pwrite_all(tmp.file.as_fd(), data, 0)
        .map_err(|e| Error::os(e, "write").with_path(tmp.tmp.shown()))?;
    tmp.commit()
}
