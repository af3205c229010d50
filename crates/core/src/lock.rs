//! `lock`: per-volume advisory locks across processes (flock(2)).
//!
//! Why flock: the kernel drops the lock when its holder dies (the fd closes),
//! so there is no stale-lock detection, no window in which breaking a stale
//! lock lets a third process in, and a blocked waiter is woken by the kernel.
//! A lock is per open file description, so two fds of one process contend too.
//!
//! Protocol for a lock file that exists only while held:
//! - take: open `path` (O_CREAT|O_NOFOLLOW|O_CLOEXEC, mode 0600), flock
//!   LOCK_EX, then check that `path` still names the fd's inode (lstat vs
//!   fstat). The releaser unlinks before closing, so a waiter that opened the
//!   old inode wakes up holding a lock on an unlinked file: it retries.
//! - release: unlink `path` while still holding the lock, then close.
//!
//! A lock file therefore outlives its holder only when the holder died (or
//! failed to unlink): `try_lock` succeeding on an existing file is how
//! recovery finds volumes whose last operation crashed.
//!
//! A symlink or non-regular file at `path` is refused (`ERR_UNSAFE_PATH`), never
//! followed. `lock` blocks the calling thread (the binding runs it on a
//! dedicated blocking thread, not on the libuv threadpool); it cannot be cancelled.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, Flock, FlockArg, OFlag};
use nix::sys::stat::{fstat, lstat, Mode};
use nix::unistd::unlink;

use crate::error::{Error, Result};
use crate::sys;

/// Library code for a lock path that is a symlink or not a regular file
/// (the same code the pool layer uses for planted paths).
pub const ERR_UNSAFE_PATH: &str = "ERR_UNSAFE_PATH";

/// A held lock: the locked fd and the path it was taken through.
#[derive(Debug)]
pub struct LockFile {
    fd: Flock<OwnedFd>,
    path: PathBuf,
}

/// Take the lock `path`, waiting (blocking this thread) while another holder has it.
pub fn lock(path: &Path) -> Result<LockFile> {
    loop {
        if let Some(held) = take(path, FlockArg::LockExclusive)? {
            return Ok(held);
        }
    }
}

/// Take the lock `path` if nobody holds it; `None` when it is held.
pub fn try_lock(path: &Path) -> Result<Option<LockFile>> {
    loop {
        match take(path, FlockArg::LockExclusiveNonblock) {
            Err(e) if e.errno() == Some(Errno::EWOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e),
            Ok(Some(held)) => return Ok(Some(held)),
            // We locked an inode that a releaser had just unlinked: look again.
            Ok(None) => continue,
        }
    }
}

/// One attempt: `Ok(None)` when the locked inode is no longer the one at `path`.
fn take(path: &Path, how: FlockArg) -> Result<Option<LockFile>> {
    // O_NONBLOCK: opening a planted FIFO must not hang (no effect on regular files).
    let flags =
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = match open(path, flags, Mode::from_bits_truncate(0o600)) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => return Err(unsafe_path(path)),
        Err(e) => return Err(Error::sys(e, "open", path)),
    };
    let st = fstat(fd.as_fd()).map_err(|e| Error::sys(e, "fstat", path))?;
    if !sys::is_regular(&st) {
        return Err(unsafe_path(path));
    }
    let mut fd = fd;
    let fd = loop {
        match Flock::lock(fd, how) {
            Ok(locked) => break locked,
            // A signal interrupted the wait: the fd is handed back unlocked; wait again.
            Err((again, Errno::EINTR)) => fd = again,
            Err((_, e)) => return Err(Error::sys(e, "flock", path)),
        }
    };
    match lstat(path) {
        Ok(now) if now.st_dev == st.st_dev && now.st_ino == st.st_ino => Ok(Some(LockFile {
            fd,
            path: path.to_path_buf(),
        })),
        Ok(_) | Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::sys(e, "lstat", path)),
    }
}

fn unsafe_path(path: &Path) -> Error {
    Error::lib(
        ERR_UNSAFE_PATH,
        "open",
        "a symlink or not a regular file; refusing to use it as a lock",
    )
    .with_path(path)
}

impl LockFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unlink the lock file, then close (which releases the lock). The lock is
    /// released even when the unlink fails; the error then says so.
    pub fn release(self) -> Result<()> {
        let removed = match unlink(&self.path) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::sys(e, "unlink", &self.path)),
        };
        drop(self.fd);
        removed
    }
}
