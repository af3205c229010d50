//! Group commit: the machinery that makes many volumes' files durable together
//! (docs/design.md §7). The batch operations (`batch`: make, start, stop, remove)
//! are sequences of these steps.
//!
//! Why: a durable file costs a log force (fsync) and a durable rename another
//! (directory fsync). Done per volume, a thousand clones cost two thousand log
//! forces; done as a batch they cost three, whatever the count.
//!
//! The pieces:
//! - `Beneath`: the directories a batch touches, opened beneath the pool root
//!   (`dir::Dir`: no symlink followed, no escape, StrictModes) and cached by their
//!   relative path. New directories are made with `Dir::create_dir_all_unsynced`:
//!   no fsync of their parent each, the batch's barrier makes them durable with
//!   everything else, and a failed batch removes them again (`remove_made`).
//! - temp files: `tempname::TempIn`, `<name>~<random>` in a directory handle the
//!   batch shares, renamed without an fsync each and unlinked on drop unless
//!   renamed (recovery removes `~` files a crash leaves).
//! - `barrier`: one `syncfs` of the pool's filesystem, or an fsync of every file
//!   and then of every directory touched, back to back (`Barrier`).
//! - `Held`: the volumes' flock locks (`lock`), released on drop; `lock_volumes`
//!   takes them and checks that each volume's record exists.
//! - `Unlinker`: names unlinked on drop (the intent file, images placed but not yet
//!   recorded, a snapshot's linked clean image before it started).
//! - `BatchReport`: the wall time of each phase and the copy method of each image.
//!
//! Every file is created, renamed and unlinked relative to a directory fd.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::stat::{fstat, FileStat};

use crate::copy::CopyMethod;
use crate::dir::{Dir, Entry, FILE_MODE};
use crate::error::{Error, Result};
use crate::lock::{self, LockFile};
use crate::tempname::TempIn;

/// How a batch makes its files durable before renaming them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Barrier {
    /// One syncfs(2) of the pool's filesystem per barrier.
    #[default]
    Syncfs,
    /// An fsync of every file (then of every directory) touched, back to back.
    Fsync,
}

/// Per-phase wall times (ns) and how the data was copied.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    /// `(phase, ns)` in order: lock, fill, barrier, rename, barrier2, records, release.
    pub phases: Vec<(&'static str, u64)>,
    /// Images made per copy method (sparse images count as `Empty`).
    pub methods: Vec<(CopyMethod, u64)>,
}

impl BatchReport {
    /// End the phase `name` begun at `since`; the next one begins now.
    pub(crate) fn phase(&mut self, name: &'static str, since: &mut Instant) {
        let now = Instant::now();
        self.phases
            .push((name, now.duration_since(*since).as_nanos() as u64));
        *since = now;
    }

    pub(crate) fn count(&mut self, m: CopyMethod) {
        match self.methods.iter_mut().find(|(k, _)| *k == m) {
            Some((_, n)) => *n += 1,
            None => self.methods.push((m, 1)),
        }
    }
}

/// Directories opened beneath the root, cached by their relative path.
pub(crate) struct Beneath {
    root: Dir,
    dirs: HashMap<PathBuf, Arc<Dir>>,
    /// Directories in which this batch created a subdirectory (fsynced at a barrier).
    grown: Vec<PathBuf>,
    /// The directories this batch created, in creation order (removed if it fails).
    made: Vec<PathBuf>,
}

impl Beneath {
    /// The directories beneath the pool's directory handle `root` (a second handle on it).
    pub(crate) fn open(root: &Dir) -> Result<Beneath> {
        Ok(Beneath {
            root: root.try_clone()?,
            dirs: HashMap::new(),
            grown: Vec::new(),
            made: Vec::new(),
        })
    }

    /// `rel` as shown in messages.
    pub(crate) fn path(&self, rel: &Path) -> PathBuf {
        self.root.shown(rel)
    }

    /// Directory `rel` beneath the root; its missing components made (mode 0700) when `create`.
    pub(crate) fn dir(&mut self, rel: &Path, create: bool) -> Result<Arc<Dir>> {
        if let Some(d) = self.dirs.get(rel) {
            return Ok(Arc::clone(d));
        }
        let dir = match self.root.open_dir(rel) {
            Err(e) if create && e.errno() == Some(Errno::ENOENT) => {
                let from = self.made.len();
                let dir = self.root.create_dir_all_unsynced(rel, &mut self.made)?;
                let parents: Vec<PathBuf> = self.made[from..].iter().map(|m| split(m).0).collect();
                self.grown.extend(parents);
                dir
            }
            r => r?,
        };
        let dir = Arc::new(dir);
        self.dirs.insert(rel.to_path_buf(), Arc::clone(&dir));
        Ok(dir)
    }

    /// Remove the directories this batch created, deepest first, so that a failed
    /// batch leaves no trace. rmdir takes only empty ones: a directory that gained
    /// anything else meanwhile (another volume of the VM) stays. Not fsynced: an
    /// empty directory back after a crash is harmless.
    pub(crate) fn remove_made(&mut self) {
        for rel in std::mem::take(&mut self.made).into_iter().rev() {
            self.dirs.remove(&rel);
            let (parent, name) = split(&rel);
            if let Ok(dir) = self.dir(&parent, false) {
                let _ = dir.rmdir_name(&name);
            }
        }
    }

    /// Whether `name` exists in directory `rel` (not followed; a missing directory: no).
    pub(crate) fn exists(&mut self, rel: &Path, name: &OsStr) -> Result<bool> {
        match self.dir(rel, false) {
            Ok(d) => Ok(d.stat_name(name)?.is_some()),
            Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// fsync every directory that gained an entry (`touched`) or a subdirectory.
    pub(crate) fn fsync_dirs<'a>(
        &mut self,
        touched: impl IntoIterator<Item = &'a PathBuf>,
    ) -> Result<()> {
        let mut all: Vec<PathBuf> = touched.into_iter().cloned().collect();
        all.append(&mut self.grown);
        all.sort();
        all.dedup();
        for rel in all {
            self.dir(&rel, false)?.fsync()?;
        }
        Ok(())
    }

    /// A temp file `<name>~<random>` (mode 0600) in the directory `rel`, renamed over
    /// `name` there.
    pub(crate) fn temp(&mut self, rel: &Path, name: &OsStr) -> Result<TempIn> {
        TempIn::create(&self.dir(rel, false)?, name, FILE_MODE)
    }

    /// Open a source image beneath the root: a regular file, no symlink anywhere;
    /// with its size and stat.
    pub(crate) fn open_source(&self, rel: &Path) -> Result<(File, u64, FileStat)> {
        let file = self.root.entry(rel)?.open_read()?;
        let st = fstat(&file).map_err(|e| Error::os(e, "fstat").with_path(self.path(rel)))?;
        Ok((file, st.st_size as u64, st))
    }
}

/// Make the temps durable: one syncfs, or an fsync of each file back to back and then
/// of every directory in `touched` (and every one that gained a subdirectory).
pub(crate) fn barrier(
    dirs: &mut Beneath,
    how: Barrier,
    temps: &[&TempIn],
    touched: &[PathBuf],
) -> Result<()> {
    match how {
        Barrier::Syncfs => {
            nix::unistd::syncfs(dirs.root.fd())
                .map_err(|e| Error::os(e, "syncfs").with_path(dirs.root.path()))?;
            dirs.grown.clear();
            Ok(())
        }
        Barrier::Fsync => {
            for t in temps {
                t.file
                    .sync_all()
                    .map_err(|e| Error::io(e, "fsync").with_path(t.shown()))?;
            }
            dirs.fsync_dirs(touched)
        }
    }
}

/// Locks held by a batch; released (files unlinked) on drop.
pub(crate) struct Held(Vec<LockFile>);

impl Drop for Held {
    fn drop(&mut self) {
        for l in self.0.drain(..) {
            // A lock file left behind only makes the next open look at that volume.
            let _ = l.release();
        }
    }
}

/// Take the lock files `names` in the directory `locks`, in the order given (the
/// caller sorts them).
pub(crate) fn take_locks(
    dirs: &mut Beneath,
    locks: &Path,
    names: impl Iterator<Item = OsString>,
) -> Result<Held> {
    let dir = dirs.dir(locks, false)?;
    let mut held = Held(Vec::new());
    for name in names {
        held.0.push(lock::lock(Entry {
            dir: dir.try_clone()?,
            name,
        })?);
    }
    Ok(held)
}

/// Take the locks of existing volumes beneath `root`: each `(lock, record)` names a
/// volume whose record must exist (else ENOENT naming the record).
pub(crate) fn lock_volumes<'a>(
    root: &Dir,
    locks: &Path,
    records: &Path,
    items: impl Iterator<Item = (&'a OsString, &'a OsString)> + Clone,
) -> Result<(Beneath, Held)> {
    let mut dirs = Beneath::open(root)?;
    let held = take_locks(&mut dirs, locks, items.clone().map(|(l, _)| l.clone()))?;
    for (_, record) in items {
        if !dirs.exists(records, record)? {
            return Err(
                Error::os(Errno::ENOENT, "open").with_path(dirs.path(&records.join(record)))
            );
        }
    }
    Ok((dirs, held))
}

/// Unlinks its names in its directory on drop (the intent file; images not yet recorded).
#[derive(Default)]
pub(crate) struct Unlinker(pub Option<Arc<Dir>>, pub Vec<OsString>);

impl Drop for Unlinker {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            for name in &self.1 {
                let _ = dir.unlink_name(name);
            }
        }
    }
}

/// `rel` as (its parent, its final name).
pub(crate) fn split(rel: &Path) -> (PathBuf, OsString) {
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = rel.file_name().map(OsStr::to_os_string).unwrap_or_default();
    (parent, name)
}
