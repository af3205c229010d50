//! Temp files `<target>~<random>` beside their target: the one place that builds them.
//!
//! Why: every durable write in the crate (copy, sparse create, JSON records) follows the
//! Qubes discipline: create a temp file beside the target (same directory, so the final
//! rename is atomic), fchmod, fill, fsync, rename over the target, fsync the directory.
//! The pool's recovery removes leftovers by the `~` in their name.
//! Strategy: the random part is a 64-bit hash of time, pid and a counter keyed by std's
//! randomly seeded `RandomState`; the file is created with O_EXCL (retried on a clash).
//! `TempFile` unlinks itself when dropped before `commit`, so an error or an abort
//! anywhere leaves nothing behind. Cost: one open plus fchmod; commit is fsync, rename,
//! fsync of the directory.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::durable;
use crate::error::{Error, Result};

/// The separator between the target's name and the random part.
pub const TEMP_MARK: char = '~';

/// `<target>~<16 hex digits>`.
pub fn temp_path(target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one((nanos, std::process::id(), n));
    let mut name = target.as_os_str().to_owned();
    name.push(format!("{TEMP_MARK}{random:016x}"));
    PathBuf::from(name)
}

/// A temp file beside its target, removed on drop unless committed.
pub struct TempFile {
    pub file: File,
    pub path: PathBuf,
    target: PathBuf,
    armed: bool,
}

impl TempFile {
    /// Create `<target>~<random>` with O_EXCL and exactly `mode` (fchmod, so the umask
    /// cannot change it).
    pub fn create(target: &Path, mode: u32) -> Result<TempFile> {
        let mut attempts = 0;
        loop {
            let path = temp_path(target);
            let opened = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path);
            match opened {
                Ok(file) => {
                    let tmp = TempFile {
                        file,
                        path,
                        target: target.to_path_buf(),
                        armed: true,
                    };
                    tmp.file
                        .set_permissions(std::fs::Permissions::from_mode(mode))
                        .map_err(|e| Error::io(e, "fchmod", &tmp.path))?;
                    return Ok(tmp);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
                Err(e) => return Err(Error::io(e, "open", &path)),
            }
        }
    }

    /// fsync the file, rename it over the target, fsync the directory.
    pub fn commit(mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io(e, "fsync", &self.path))?;
        durable::rename(&self.path, &self.target)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error being returned matters more than a failed cleanup,
            // and recovery removes `~` files the pool finds later.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
