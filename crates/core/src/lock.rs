//! `lock`: per-volume advisory locks across processes (flock(2)).
//!
//! Why flock: the kernel drops the lock when its holder dies (the fd closes),
//! so there is no stale-lock detection, no window in which breaking a stale
//! lock lets a third process in, and a blocked waiter is woken by the kernel.
//! A lock is per open file description, so two fds of one process contend too.
//!
//! Protocol for a lock file that exists only while held (an `Entry`: the locks
//! directory's handle plus the file's name, so no path is walked twice):
//! - take: open the entry (O_CREAT|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC, mode 0600),
//!   flock LOCK_EX, then check that the name still names the fd's inode
//!   (fstatat vs fstat). The releaser unlinks before closing, so a waiter that
//!   opened the old inode wakes up holding a lock on an unlinked file: it retries.
//! - release: unlink the name while still holding the lock, then close.
//!
//! A lock file therefore outlives its holder only when the holder died (or
//! failed to unlink): `try_lock` succeeding on an existing file is how
//! recovery finds volumes whose last operation crashed.
//!
//! A symlink or non-regular file at the name is refused (`ERR_UNSAFE_PATH`), never
//! followed or opened. `lock` blocks the calling thread (the binding runs it on a
//! dedicated blocking thread, not on the libuv threadpool); it cannot be cancelled.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::fstat;

use crate::dir::{unsafe_path, Entry, FILE_MODE};
use crate::error::{codes, Error, Result};

/// Library code for a lock file that is a symlink or not a regular file
/// (the same code the pool layer uses for planted paths).
pub const ERR_UNSAFE_PATH: &str = codes::ERR_UNSAFE_PATH;

/// A held lock: the locked fd and the entry it was taken through.
#[derive(Debug)]
pub struct LockFile {
    fd: Flock<OwnedFd>,
    entry: Entry,
}

/// Take the lock `entry`, waiting (blocking this thread) while another holder has it.
pub fn lock(entry: Entry) -> Result<LockFile> {
    let mut entry = entry;
    loop {
        match take(entry, FlockArg::LockExclusive)? {
            Ok(held) => return Ok(held),
            Err(again) => entry = again,
        }
    }
}

/// Take the lock `entry` if nobody holds it; `None` when it is held.
pub fn try_lock(entry: Entry) -> Result<Option<LockFile>> {
    let mut entry = entry;
    loop {
        match take(entry, FlockArg::LockExclusiveNonblock) {
            Err(e) if e.errno() == Some(Errno::EWOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e),
            Ok(Ok(held)) => return Ok(Some(held)),
            // We locked an inode that a releaser had just unlinked: look again.
            Ok(Err(again)) => entry = again,
        }
    }
}

/// One attempt: `Ok(Err(entry))` when the locked inode is no longer the one named.
fn take(entry: Entry, how: FlockArg) -> Result<std::result::Result<LockFile, Entry>> {
    let file = entry
        .open(OFlag::O_RDONLY | OFlag::O_CREAT, FILE_MODE)
        .map_err(|e| lock_error(e, &entry))?;
    let fd = OwnedFd::from(file);
    let st = fstat(fd.as_fd()).map_err(|e| Error::os(e, "fstat").with_path(entry.shown()))?;
    let mut fd = fd;
    let fd = loop {
        match Flock::lock(fd, how) {
            Ok(locked) => break locked,
            // A signal interrupted the wait: the fd is handed back unlocked; wait again.
            Err((again, Errno::EINTR)) => fd = again,
            Err((_, e)) => return Err(Error::os(e, "flock").with_path(entry.shown())),
        }
    };
    match entry.stat()? {
        Some(now) if now.st_dev == st.st_dev && now.st_ino == st.st_ino => {
            Ok(Ok(LockFile { fd, entry }))
        }
        _ => Ok(Err(entry)),
    }
}

/// A lock file that is not a regular file is always `ERR_UNSAFE_PATH` (also outside pools).
fn lock_error(e: Error, entry: &Entry) -> Error {
    if e.code == Some(codes::ERR_NOT_REGULAR_FILE) {
        let what = format!(
            "{} is a symlink or not a regular file; it is not a lock file",
            entry.shown().display()
        );
        return unsafe_path(&entry.shown(), "open", &what);
    }
    e
}

impl LockFile {
    /// The path the lock is shown as.
    pub fn path(&self) -> PathBuf {
        self.entry.shown()
    }

    /// Unlink the lock file, then close (which releases the lock). The lock is
    /// released even when the unlink fails; the error then says so.
    pub fn release(self) -> Result<()> {
        let removed = self.entry.unlink().map(drop);
        drop(self.fd);
        removed
    }
}
