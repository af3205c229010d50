//! Batch operations: many volumes' files made durable together (group commit).
//!
//! Why: a durable file costs a log force (fsync) and a durable rename another
//! (directory fsync). Done per volume, a thousand clones cost two thousand log
//! forces; done as a batch they cost three, whatever the count
//! (docs/design.md §7).
//!
//! Sequence of `make` (clone / create many volumes):
//! 1. take every item's lock (flock, sorted by the caller), check that no
//!    record and no image of the item exists yet;
//! 2. for each item: open (or mkdir) its VM directory beneath the root, create
//!    its images as temp files `<name>~<random>` (FICLONE of a source, or the
//!    sparse copy where the filesystem cannot clone, or an empty sparse file)
//!    and its record as a temp file; the intent file (the list of vids, for
//!    recovery) is put in place;
//! 3. barrier 1: the data and the temp files are durable (`syncfs` once, or an
//!    fsync of every file issued back to back);
//! 4. rename every image into place (RENAME_NOREPLACE), barrier 2 (the VM
//!    directories: `syncfs`, or their fsyncs);
//! 5. rename every record into place, fsync the record directory, unlink the
//!    intent file, release the locks.
//!
//! Crash rule (docs/design.md §4): a record is renamed in only after its images
//! are durable under their final names, so no volume is ever listed without its
//! data. A crash before step 5 leaves temp files (recovery removes `~` files) and
//! at worst final images without a record, which the intent file names for
//! recovery. An error or an abort before step 4 unlinks every temp file (drop),
//! so a failed batch leaves nothing; cancellation is checked between items and
//! once more before the first rename, after which the batch finishes.
//!
//! `start_snapshots` and `remove_files` are the same idea for start and stop of
//! snapshot volumes: link + clone to temps, one barrier, renames, one barrier;
//! unlinks, one barrier.
//!
//! `remove_volumes` deletes whole volumes: locks, the running check, then the
//! commit point (a durable intent naming the vids), the record unlinks, every
//! file's unlink, the empty VM directories, one barrier, and the intent's
//! removal. Before the intent nothing has changed (a refusal or an abort leaves
//! every volume whole); after it recovery finishes the removal of every vid it
//! names, so a crash leaves each volume whole or gone (docs/design.md §4, §7).
//!
//! All directory opening is in `Beneath`: every component below the root is
//! opened with O_NOFOLLOW|O_DIRECTORY (a planted symlink is refused, never
//! followed), and every file is created, renamed and unlinked relative to a
//! directory fd.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, renameat2, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode};
use nix::unistd::{linkat, unlinkat, UnlinkatFlags};

use crate::control::Control;
use crate::copy::{fill, CopyMethod, ReflinkMode};
use crate::dir::{unsafe_path, Dir, Entry, Kind, DIR_MODE, FILE_MODE};
use crate::error::{Error, Result};
use crate::lock::{self, LockFile};
use crate::sys;
use crate::tempname::temp_name_for;

/// How a batch makes its files durable before renaming them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Barrier {
    /// One syncfs(2) of the pool's filesystem per barrier.
    #[default]
    Syncfs,
    /// An fsync of every file (then of every directory) touched, back to back.
    Fsync,
}

/// What a new image holds.
#[derive(Debug, Clone)]
pub enum Fill {
    /// A copy of `sources[n]`: FICLONE where the filesystem can, else the sparse copy.
    Copy(usize),
    /// `n` bytes, all holes.
    Sparse(u64),
}

#[derive(Debug, Clone)]
pub struct NewImage {
    pub name: OsString,
    pub fill: Fill,
    /// Give the image the source's mtime (a precache must match its clean image).
    pub copy_mtime: bool,
}

/// One volume of a `make` batch.
#[derive(Debug, Clone)]
pub struct Item {
    /// The VM directory, relative to the root (created when missing).
    pub dir: PathBuf,
    /// Images created in `dir`; none may exist yet.
    pub images: Vec<NewImage>,
    /// The record file name (in `MakeSpec::records`) and its bytes; it may not exist yet.
    pub record: (OsString, Vec<u8>),
    /// Lock file name in `MakeSpec::locks`, held for the whole batch.
    pub lock: OsString,
}

#[derive(Debug, Clone)]
pub struct MakeSpec {
    /// The pool directory (absolute; may itself be a symlink, the user's choice).
    pub root: PathBuf,
    /// The record and lock directories, relative to the root.
    pub records: PathBuf,
    pub locks: PathBuf,
    /// Source images, relative to the root.
    pub sources: Vec<PathBuf>,
    pub items: Vec<Item>,
    /// The intent file (relative to the root) and its bytes: the batch's vids, for recovery.
    pub intent: (PathBuf, Vec<u8>),
    pub barrier: Barrier,
    pub reflink: ReflinkMode,
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
    fn phase(&mut self, name: &'static str, since: &mut Instant) {
        let now = Instant::now();
        self.phases
            .push((name, now.duration_since(*since).as_nanos() as u64));
        *since = now;
    }

    fn count(&mut self, m: CopyMethod) {
        match self.methods.iter_mut().find(|(k, _)| *k == m) {
            Some((_, n)) => *n += 1,
            None => self.methods.push((m, 1)),
        }
    }
}

/// Directories opened beneath the root (`Dir`: no symlink, no escape, StrictModes),
/// cached by their relative path. New directories are made here without an fsync of
/// their parent: the batch's barrier makes them durable with everything else.
struct Beneath {
    root: Dir,
    dirs: HashMap<PathBuf, Arc<Dir>>,
    /// Directories in which this batch created a subdirectory (fsynced at a barrier).
    grown: Vec<PathBuf>,
    /// The directories this batch created, in creation order (removed if it fails).
    made: Vec<PathBuf>,
}

impl Beneath {
    fn open(root: &Path) -> Result<Beneath> {
        Ok(Beneath {
            root: Dir::open_root(root)?,
            dirs: HashMap::new(),
            grown: Vec::new(),
            made: Vec::new(),
        })
    }

    fn path(&self, rel: &Path) -> PathBuf {
        self.root.shown(rel)
    }

    /// Directory `rel` beneath the root; its missing components made (mode 0700) when `create`.
    fn dir(&mut self, rel: &Path, create: bool) -> Result<Arc<Dir>> {
        if let Some(d) = self.dirs.get(rel) {
            return Ok(Arc::clone(d));
        }
        let dir = match self.root.open_dir(rel) {
            Err(e) if create && e.errno() == Some(Errno::ENOENT) => {
                self.make_dirs(rel)?;
                self.root.open_dir(rel)?
            }
            r => r?,
        };
        let dir = Arc::new(dir);
        self.dirs.insert(rel.to_path_buf(), Arc::clone(&dir));
        Ok(dir)
    }

    /// mkdir each missing component of `rel` (mode exactly DIR_MODE), remembering its parent.
    fn make_dirs(&mut self, rel: &Path) -> Result<()> {
        let mut at = PathBuf::new();
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Err(unsafe_path(
                    &self.path(rel),
                    "open",
                    "not a plain relative path",
                ));
            };
            let parent = self.dir(&at, false)?;
            let shown = self.path(&at.join(name));
            match mkdirat(parent.fd(), name, Mode::from_bits_truncate(DIR_MODE)) {
                Ok(()) => {
                    let fd = openat(
                        parent.fd(),
                        name,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| Error::os(e, "open").with_path(&shown))?;
                    fchmod(&fd, Mode::from_bits_truncate(DIR_MODE))
                        .map_err(|e| Error::os(e, "fchmod").with_path(&shown))?;
                    self.grown.push(at.clone());
                    self.made.push(at.join(name));
                }
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::os(e, "mkdir").with_path(&shown)),
            }
            at.push(name);
        }
        Ok(())
    }

    /// Remove the directories this batch created, deepest first, so that a failed
    /// batch leaves no trace. rmdir takes only empty ones: a directory that gained
    /// anything else meanwhile (another volume of the VM) stays. Not fsynced: an
    /// empty directory back after a crash is harmless.
    fn remove_made(&mut self) {
        for rel in std::mem::take(&mut self.made).into_iter().rev() {
            self.dirs.remove(&rel);
            let (parent, name) = split(&rel);
            if let Ok(dir) = self.dir(&parent, false) {
                let _ = unlinkat(dir.fd(), name.as_os_str(), UnlinkatFlags::RemoveDir);
            }
        }
    }

    /// Whether `name` exists in directory `rel` (not followed; a missing directory: no).
    fn exists(&mut self, rel: &Path, name: &OsStr) -> Result<bool> {
        let dir = match self.dir(rel, false) {
            Ok(d) => d,
            Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(e),
        };
        match fstatat(dir.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(Error::os(e, "lstat").with_path(self.path(&rel.join(name)))),
        }
    }

    /// fsync every directory that gained an entry (`touched`) or a subdirectory.
    fn fsync_dirs<'a>(&mut self, touched: impl IntoIterator<Item = &'a PathBuf>) -> Result<()> {
        let mut all: Vec<PathBuf> = touched.into_iter().cloned().collect();
        all.append(&mut self.grown);
        all.sort();
        all.dedup();
        for rel in all {
            self.dir(&rel, false)?.fsync()?;
        }
        Ok(())
    }
}

/// A temp file `<name>~<random>` in a directory of the batch, unlinked on drop unless renamed.
struct Temp {
    dir: PathBuf,
    name: OsString,
    target: OsString,
    file: File,
    armed: bool,
    /// The directory, for the rename and the unlink on drop.
    dir_fd: Arc<Dir>,
}

impl Temp {
    fn create(dirs: &mut Beneath, dir: &Path, target: &OsStr) -> Result<Temp> {
        let dir_fd = dirs.dir(dir, false)?;
        let mut attempts = 0;
        loop {
            let name = temp_name_for(target);
            let flags = OFlag::O_RDWR
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            match openat(
                dir_fd.fd(),
                name.as_os_str(),
                flags,
                Mode::from_bits_truncate(FILE_MODE),
            ) {
                Ok(fd) => {
                    let temp = Temp {
                        dir: dir.to_path_buf(),
                        name,
                        target: target.to_os_string(),
                        file: File::from(fd),
                        armed: true,
                        dir_fd: Arc::clone(&dir_fd),
                    };
                    // Exactly 0600 whatever the umask.
                    fchmod(&temp.file, Mode::from_bits_truncate(FILE_MODE))
                        .map_err(|e| Error::os(e, "fchmod").with_path(temp.path(dirs)))?;
                    return Ok(temp);
                }
                Err(Errno::EEXIST) if attempts < 8 => attempts += 1,
                Err(e) => return Err(Error::os(e, "open").with_path(dirs.path(&dir.join(&name)))),
            }
        }
    }

    fn path(&self, dirs: &Beneath) -> PathBuf {
        dirs.path(&self.dir.join(&self.name))
    }

    /// Rename over the target name, refusing to replace an existing file when `noreplace`.
    fn rename(&mut self, dirs: &Beneath, noreplace: bool) -> Result<()> {
        let flags = if noreplace {
            RenameFlags::RENAME_NOREPLACE
        } else {
            RenameFlags::empty()
        };
        let fd = self.dir_fd.fd();
        renameat2(
            fd,
            self.name.as_os_str(),
            fd,
            self.target.as_os_str(),
            flags,
        )
        .map_err(|e| {
            Error::os(e, "rename")
                .with_path(self.path(dirs))
                .with_dest(dirs.path(&self.dir.join(&self.target)))
        })?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error being returned matters more; recovery removes `~` files.
            let _ = unlinkat(
                self.dir_fd.fd(),
                self.name.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// Make the temps durable: one syncfs, or an fsync of each file back to back.
fn barrier(dirs: &mut Beneath, how: Barrier, temps: &[&Temp], touched: &[PathBuf]) -> Result<()> {
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
                    .map_err(|e| Error::io(e, "fsync").with_path(t.path(dirs)))?;
            }
            dirs.fsync_dirs(touched)
        }
    }
}

/// Locks held by a batch; released (files unlinked) on drop.
struct Held(Vec<LockFile>);

impl Drop for Held {
    fn drop(&mut self) {
        for l in self.0.drain(..) {
            // A lock file left behind only makes the next open look at that volume.
            let _ = l.release();
        }
    }
}

fn take_locks(
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

/// Open the root and take the locks of existing volumes: each `(lock, record)`
/// names a volume whose record must exist (else ENOENT naming the record).
fn lock_volumes<'a>(
    root: &Path,
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

fn exists_error(path: PathBuf) -> Error {
    Error::os(Errno::EEXIST, "create").with_path(path)
}

/// Open a source image beneath the root: a regular file, no symlink anywhere.
fn open_source(dirs: &mut Beneath, rel: &Path) -> Result<(File, u64, FileStat)> {
    let file = dirs.root.entry(rel)?.open_read()?;
    let st = fstat(&file).map_err(|e| Error::os(e, "fstat").with_path(dirs.path(rel)))?;
    Ok((file, st.st_size as u64, st))
}

fn split(rel: &Path) -> (PathBuf, OsString) {
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = rel.file_name().map(OsStr::to_os_string).unwrap_or_default();
    (parent, name)
}

/// Make many volumes in one group commit (module docs). Progress counts items.
/// A batch that fails or is cancelled leaves nothing, not even the directories
/// it created (removed while its locks are still held).
pub fn make(spec: &MakeSpec, ctl: &Control) -> Result<BatchReport> {
    let mut t = Instant::now();
    ctl.check()?;
    let mut dirs = Beneath::open(&spec.root)?;
    let held = take_locks(
        &mut dirs,
        &spec.locks,
        spec.items.iter().map(|i| i.lock.clone()),
    )?;
    let made = make_locked(spec, ctl, &mut dirs, &mut t);
    if made.is_err() {
        dirs.remove_made();
    }
    let mut report = made?;
    drop(held);
    report.phase("release", &mut t);
    Ok(report)
}

/// `make` once the locks are held: everything up to the records.
fn make_locked(
    spec: &MakeSpec,
    ctl: &Control,
    dirs: &mut Beneath,
    t: &mut Instant,
) -> Result<BatchReport> {
    let mut report = BatchReport::default();
    for item in &spec.items {
        if dirs.exists(&spec.records, &item.record.0)? {
            return Err(exists_error(dirs.path(&spec.records.join(&item.record.0))));
        }
        for img in &item.images {
            if dirs.exists(&item.dir, &img.name)? {
                return Err(exists_error(dirs.path(&item.dir.join(&img.name))));
            }
        }
    }
    let sources = spec
        .sources
        .iter()
        .map(|s| open_source(dirs, s))
        .collect::<Result<Vec<_>>>()?;
    report.phase("lock", t);

    let total = spec.items.len() as u64;
    // Cancellation inside a long copy (no reflink here), but progress counts items.
    let inner = Control {
        cancel: ctl.cancel,
        progress: None,
    };
    let mut images: Vec<Temp> = Vec::new();
    let mut records: Vec<Temp> = Vec::with_capacity(spec.items.len());
    for (n, item) in spec.items.iter().enumerate() {
        ctl.check()?;
        dirs.dir(&item.dir, true)?;
        for img in &item.images {
            let temp = Temp::create(dirs, &item.dir, &img.name)?;
            let method = match img.fill {
                Fill::Copy(s) => {
                    let (src, size, st) = &sources[s];
                    let out = fill(src.as_fd(), &temp.file, *size, *size, spec.reflink, &inner)
                        .map_err(|e| {
                            e.with_path(dirs.path(&spec.sources[s]))
                                .with_dest(temp.path(dirs))
                        })?;
                    if img.copy_mtime {
                        let mtime = nix::sys::time::TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
                        nix::sys::stat::futimens(
                            &temp.file,
                            &nix::sys::time::TimeSpec::UTIME_OMIT,
                            &mtime,
                        )
                        .map_err(|e| Error::os(e, "futimens").with_path(temp.path(dirs)))?;
                    }
                    if *size == 0 {
                        CopyMethod::Empty
                    } else {
                        out.method
                    }
                }
                Fill::Sparse(size) => {
                    temp.file
                        .set_len(size)
                        .map_err(|e| Error::io(e, "ftruncate").with_path(temp.path(dirs)))?;
                    CopyMethod::Empty
                }
            };
            report.count(method);
            images.push(temp);
        }
        let rec = Temp::create(dirs, &spec.records, &item.record.0)?;
        sys::pwrite_all(rec.file.as_fd(), &item.record.1, 0)
            .map_err(|e| Error::os(e, "write").with_path(rec.path(dirs)))?;
        records.push(rec);
        ctl.report(n as u64 + 1, total);
    }
    let (intent_dir, intent_name) = split(&spec.intent.0);
    let mut intent = Temp::create(dirs, &intent_dir, &intent_name)?;
    sys::pwrite_all(intent.file.as_fd(), &spec.intent.1, 0)
        .map_err(|e| Error::os(e, "write").with_path(intent.path(dirs)))?;
    report.phase("fill", t);

    // Barrier 1: data, temps and the intent durable (the intent under its final
    // name, its directory fsynced by the barrier) before any image name appears.
    intent
        .file
        .sync_all()
        .map_err(|e| Error::io(e, "fsync").with_path(intent.path(dirs)))?;
    intent.rename(dirs, false)?;
    let _intent = Unlinker(Some(Arc::clone(&intent.dir_fd)), vec![intent_name]);
    let all: Vec<&Temp> = images.iter().chain(records.iter()).collect();
    barrier(
        dirs,
        spec.barrier,
        &all,
        &[intent_dir, spec.records.clone()],
    )?;
    report.phase("barrier", t);
    // Last chance to cancel: after this the batch finishes.
    ctl.check()?;

    // Images into place. Until its record is in, every image placed is undone on error.
    let mut placed: Vec<Unlinker> = spec.items.iter().map(|_| Unlinker::default()).collect();
    let per_item: Vec<usize> = spec.items.iter().map(|i| i.images.len()).collect();
    let mut imgs = images.iter_mut();
    for (n, count) in per_item.iter().enumerate() {
        for img in imgs.by_ref().take(*count) {
            img.rename(dirs, true)?;
            placed[n].0 = Some(Arc::clone(&img.dir_fd));
            placed[n].1.push(img.target.clone());
        }
    }
    report.phase("rename", t);
    let touched: Vec<PathBuf> = spec.items.iter().map(|i| i.dir.clone()).collect();
    barrier(dirs, spec.barrier, &[], &touched)?;
    report.phase("barrier2", t);

    for (rec, undo) in records.iter_mut().zip(placed.iter_mut()) {
        rec.rename(dirs, true)?;
        undo.1.clear();
    }
    dirs.fsync_dirs([&spec.records])?;
    report.phase("records", t);
    // Every vid of the intent has its record now: unlink it (the caller then releases the locks).
    drop(placed);
    drop(_intent);
    Ok(report)
}

/// Unlinks its names in its directory on drop (the intent file; images not yet recorded).
#[derive(Default)]
struct Unlinker(Option<Arc<Dir>>, Vec<OsString>);

impl Drop for Unlinker {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            for name in &self.1 {
                let _ = unlinkat(dir.fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
    }
}

/// One volume to start: clone its clean image to its dirty image; for a snapshot
/// volume, first link the source's clean image in as its own clean image.
#[derive(Debug, Clone)]
pub struct StartItem {
    /// The VM directory, relative to the root (created when missing).
    pub dir: PathBuf,
    /// The volume's own clean image and dirty image names in `dir`.
    pub clean: OsString,
    pub dirty: OsString,
    /// Snapshot volume: the source volume's clean image, relative to the root.
    /// None (a save-on-stop volume): its own clean image is the source, and an
    /// existing dirty image (a crash while running) is kept as it is.
    pub source: Option<PathBuf>,
    /// The volume's record (must exist) and lock file names.
    pub record: OsString,
    pub lock: OsString,
}

/// A batch over existing volumes (start, stop): where they live and what to do to each.
#[derive(Debug, Clone)]
pub struct VolumesSpec<I> {
    pub root: PathBuf,
    pub records: PathBuf,
    pub locks: PathBuf,
    pub items: Vec<I>,
    pub barrier: Barrier,
}

/// An item of a `VolumesSpec`: the volume's lock file and record file names.
pub trait VolumeItem {
    fn lock(&self) -> &OsString;
    fn record(&self) -> &OsString;
}

/// `VolumeItem` for an item struct with `lock` and `record` fields.
macro_rules! volume_item {
    ($item:ty) => {
        impl VolumeItem for $item {
            fn lock(&self) -> &OsString {
                &self.lock
            }
            fn record(&self) -> &OsString {
                &self.record
            }
        }
    };
}

/// A batch under way: its report, the clock of its current phase, its directories and locks.
struct Begun(BatchReport, Instant, Beneath, Held);

impl<I: VolumeItem> VolumesSpec<I> {
    /// Check for an abort, open the root and take every item's lock; each item's
    /// record must exist. The first phase, "lock", is timed.
    fn begin(&self, ctl: &Control) -> Result<Begun> {
        let mut t = Instant::now();
        ctl.check()?;
        let (dirs, held) = lock_volumes(
            &self.root,
            &self.locks,
            &self.records,
            self.items.iter().map(|i| (i.lock(), i.record())),
        )?;
        let mut report = BatchReport::default();
        report.phase("lock", &mut t);
        Ok(Begun(report, t, dirs, held))
    }
}

pub type StartSpec = VolumesSpec<StartItem>;

volume_item!(StartItem);

/// Start many volumes: per item (snapshot volume) unlink the old own clean image and
/// link the source's clean image in its place, then clone the clean image to a dirty
/// temp; one barrier; rename every dirty temp into place; one barrier. Progress
/// counts items.
pub fn start_snapshots(spec: &StartSpec, ctl: &Control) -> Result<BatchReport> {
    let Begun(mut report, mut t, mut dirs, _held) = spec.begin(ctl)?;
    let total = spec.items.len() as u64;
    let mut temps: Vec<Temp> = Vec::with_capacity(spec.items.len());
    // A snapshot's own clean image is linked before its dirty image exists: until that
    // dirty image is renamed in, a failed or cancelled batch unlinks the link again
    // (a stopped snapshot owns no image). One per temp, in the same order.
    let mut links: Vec<Unlinker> = Vec::with_capacity(spec.items.len());
    for (n, item) in spec.items.iter().enumerate() {
        ctl.check()?;
        let dir = dirs.dir(&item.dir, true)?;
        let link = match &item.source {
            Some(source) => {
                link_source(&mut dirs, &dir, item, source)?;
                Unlinker(Some(Arc::clone(&dir)), vec![item.clean.clone()])
            }
            None if dirs.exists(&item.dir, &item.dirty)? => {
                ctl.report(n as u64 + 1, total);
                continue;
            }
            None => Unlinker::default(),
        };
        let (src, size, _) = open_source(&mut dirs, &item.dir.join(&item.clean))?;
        let temp = Temp::create(&mut dirs, &item.dir, &item.dirty)?;
        let out = fill(
            src.as_fd(),
            &temp.file,
            size,
            size,
            ReflinkMode::Auto,
            &Control::NONE,
        )
        .map_err(|e| {
            e.with_path(dirs.path(&item.dir.join(&item.clean)))
                .with_dest(temp.path(&dirs))
        })?;
        report.count(if size == 0 {
            CopyMethod::Empty
        } else {
            out.method
        });
        temps.push(temp);
        links.push(link);
        ctl.report(n as u64 + 1, total);
    }
    report.phase("fill", &mut t);
    let all: Vec<&Temp> = temps.iter().collect();
    barrier(&mut dirs, spec.barrier, &all, &[])?;
    report.phase("barrier", &mut t);
    ctl.check()?;
    for (temp, link) in temps.iter_mut().zip(links.iter_mut()) {
        temp.rename(&dirs, false)?;
        link.1.clear(); // started: its clean image stays with its dirty image
    }
    report.phase("rename", &mut t);
    let touched: Vec<PathBuf> = spec.items.iter().map(|i| i.dir.clone()).collect();
    barrier(&mut dirs, spec.barrier, &[], &touched)?;
    report.phase("barrier2", &mut t);
    drop(_held);
    report.phase("release", &mut t);
    Ok(report)
}

/// A snapshot volume's own clean image becomes (a hardlink of) the source's clean image.
fn link_source(dirs: &mut Beneath, dir: &Dir, item: &StartItem, source: &Path) -> Result<()> {
    let (src_dir, src_name) = split(source);
    let src_fd = dirs.dir(&src_dir, false)?;
    match unlinkat(dir.fd(), item.clean.as_os_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => {
            return Err(Error::os(e, "unlink").with_path(dirs.path(&item.dir.join(&item.clean))))
        }
    }
    linkat(
        src_fd.fd(),
        src_name.as_os_str(),
        dir.fd(),
        item.clean.as_os_str(),
        AtFlags::empty(),
    )
    .map_err(|e| {
        Error::os(e, "link")
            .with_path(dirs.path(source))
            .with_dest(dirs.path(&item.dir.join(&item.clean)))
    })
}

/// Files of one volume to unlink (missing ones are fine), under its lock.
#[derive(Debug, Clone)]
pub struct RemoveItem {
    pub dir: PathBuf,
    pub names: Vec<OsString>,
    pub record: OsString,
    pub lock: OsString,
}

pub type RemoveSpec = VolumesSpec<RemoveItem>;

volume_item!(RemoveItem);

/// Unlink many volumes' files (stop of snapshot volumes), then one barrier. Not
/// cancellable once the locks are held: unlinks are short.
pub fn remove_files(spec: &RemoveSpec, ctl: &Control) -> Result<BatchReport> {
    let Begun(mut report, mut t, mut dirs, _held) = spec.begin(ctl)?;
    let total = spec.items.len() as u64;
    let mut touched = Vec::new();
    for (n, item) in spec.items.iter().enumerate() {
        let dir = match dirs.dir(&item.dir, false) {
            Ok(d) => d,
            Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        for name in &item.names {
            match unlinkat(dir.fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => {
                    return Err(Error::os(e, "unlink").with_path(dirs.path(&item.dir.join(name))))
                }
            }
        }
        touched.push(item.dir.clone());
        ctl.report(n as u64 + 1, total);
    }
    report.phase("unlink", &mut t);
    barrier(&mut dirs, spec.barrier, &[], &touched)?;
    report.phase("barrier", &mut t);
    drop(_held);
    report.phase("release", &mut t);
    Ok(report)
}

/// One volume of a `remove_volumes` batch: all its files, under its lock.
#[derive(Debug, Clone)]
pub struct DropItem {
    /// The VM directory, relative to the root (removed when it ends up empty).
    pub dir: PathBuf,
    /// Files of the volume, relative to the root (its metadata beside the record,
    /// images the caller names); missing ones are fine. A file outside `dir` is
    /// looked up in one listing of its directory per batch (under the locks), so a
    /// missing one costs no unlink.
    pub files: Vec<PathBuf>,
    /// The volume's image base name (`root` of `appvms/vm/root`): when set, every
    /// image of the volume in `dir` (ts/pool/names.ts `parseImageName`; see
    /// `is_image_of`) is found by listing `dir` under the lock and removed too.
    pub base: Option<OsString>,
    /// A name in `dir` that refuses the whole batch (EBUSY naming it) when it exists:
    /// the dirty image of a running volume, unless the caller forces.
    pub busy: Option<OsString>,
    pub record: OsString,
    pub lock: OsString,
}

volume_item!(DropItem);

/// A `remove_volumes` batch: its volumes and its intent file (relative to the root) and bytes.
#[derive(Debug, Clone)]
pub struct DropSpec {
    pub volumes: VolumesSpec<DropItem>,
    pub intent: (PathBuf, Vec<u8>),
}

fn unlink_missing_ok(
    dirs: &Beneath,
    dir: &Dir,
    rel: &Path,
    name: &OsStr,
    flag: UnlinkatFlags,
) -> Result<()> {
    match unlinkat(dir.fd(), name, flag) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::os(e, "unlink").with_path(dirs.path(&rel.join(name)))),
    }
}

/// The entries of `dir` (without `.` and `..`), read by getdents64 on its own
/// descriptor after rewinding it: a lseek and two getdents64 for a VM directory,
/// where `Dir::list` opens a second descriptor (eight syscalls). A remove batch
/// lists every VM directory it removes.
fn entries(dir: &Dir) -> Result<Vec<(OsString, Kind)>> {
    let fd = dir.fd().as_raw_fd();
    let failed = |op: &'static str| Error::os(Errno::last(), op).with_path(dir.shown(""));
    // SAFETY: `fd` is open for the whole call; lseek takes integers only.
    if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } < 0 {
        return Err(failed("lseek"));
    }
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = Vec::new();
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `fd` is open.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(failed("getdents64"));
        }
        if n == 0 {
            return Ok(out);
        }
        // struct linux_dirent64: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1), d_name (NUL-terminated).
        let mut at = 0usize;
        while at < n as usize {
            let rec = &buf[at..];
            let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
            let name = &rec[19..reclen];
            let name =
                OsStr::from_bytes(&name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())]);
            at += reclen;
            if name == "." || name == ".." {
                continue;
            }
            let kind = match rec[18] {
                libc::DT_REG => Kind::File,
                libc::DT_DIR => Kind::Dir,
                libc::DT_LNK => Kind::Symlink,
                // DT_UNKNOWN (some filesystems): ask.
                libc::DT_UNKNOWN => match fstatat(dir.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) => Kind::of(&st),
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(Error::os(e, "lstat").with_path(dir.shown(name))),
                },
                _ => Kind::Other,
            };
            out.push((name.to_os_string(), kind));
        }
    }
}

/// Highest revision number the pool makes (ts/pool/names.ts `MAX_REVISION`).
const MAX_REVISION: u64 = (1 << 53) - 2;

/// Whether `name`, an entry of a VM directory, is an image of the volume whose
/// images are named `base…`: exactly when ts/pool/names.ts `parseImageName(name)`
/// gives this base (and, for a revision out of range, only as a temp file), as
/// ts/pool/remove.ts selected them. A temp file is `<image>~<random>`.
fn is_image_of(base: &[u8], name: &[u8]) -> bool {
    let (stem, temp) = match name.iter().position(|&c| c == b'~') {
        Some(m) if m + 1 == name.len() => return false,
        Some(m) => (&name[..m], true),
        None => (name, false),
    };
    // `<base>.img.<rev>@<YYYY-MM-DDTHH:MM:SS>Z` and `<base>.img.(base|partial)@<32 hex>`:
    // the part after the last `.img.` has no dot, so only the last one can match.
    if let Some(i) = stem.windows(5).rposition(|w| w == b".img.") {
        let (b, tail) = (&stem[..i], &stem[i + 5..]);
        if !b.is_empty() {
            if let Some(rev) = revision_number(tail) {
                return b == base && (rev.is_some() || temp);
            }
            if kept_base(tail) {
                return b == base;
            }
        }
    }
    // Longest suffix first: `-dirty.img` also ends in `.img`.
    for suffix in [
        &b"-dirty.img"[..],
        b"-precache.img",
        b"-import.img",
        b".img",
    ] {
        if stem.len() > suffix.len() && stem.ends_with(suffix) {
            return &stem[..stem.len() - suffix.len()] == base;
        }
    }
    false
}

/// `<rev>@<YYYY-MM-DDTHH:MM:SS>Z`: `Some(Some(rev))` in range, `Some(None)` out of
/// range (more than 16 digits or above MAX_REVISION), `None` when it is not one.
fn revision_number(tail: &[u8]) -> Option<Option<u64>> {
    let at = tail.iter().position(|&c| c == b'@')?;
    let (digits, stamp) = (&tail[..at], &tail[at + 1..]);
    let ok_digits =
        matches!(digits.first(), Some(b'1'..=b'9')) && digits.iter().all(u8::is_ascii_digit);
    let pattern = b"dddd-dd-ddTdd:dd:ddZ";
    let ok_stamp = stamp.len() == pattern.len()
        && stamp.iter().zip(pattern).all(|(&c, &p)| {
            if p == b'd' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        });
    if !ok_digits || !ok_stamp {
        return None;
    }
    if digits.len() > 16 {
        return Some(None);
    }
    let n = digits
        .iter()
        .fold(0u64, |n, &c| n * 10 + u64::from(c - b'0'));
    Some((n <= MAX_REVISION).then_some(n))
}

/// `(base|partial)@<32 lowercase hex>`.
fn kept_base(tail: &[u8]) -> bool {
    let hex = tail
        .strip_prefix(b"base@")
        .or_else(|| tail.strip_prefix(b"partial@"));
    hex.is_some_and(|h| h.len() == 32 && h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
}

/// Remove many whole volumes in one group commit (module docs). All or nothing up
/// to the commit point (the intent made durable): a busy item or a cancellation
/// before it changes nothing. An error after it leaves the intent in place, so
/// that recovery finishes the removal. Progress counts items.
pub fn remove_volumes(spec: &DropSpec, ctl: &Control) -> Result<BatchReport> {
    let vs = &spec.volumes;
    let Begun(mut report, mut t, mut dirs, held) = vs.begin(ctl)?;
    let total = vs.items.len() as u64;
    // Per item, the images found by listing its VM directory (`base`).
    let mut images: Vec<Vec<OsString>> = Vec::with_capacity(vs.items.len());
    // The names in each directory of files outside the VM directories, listed once.
    let mut present: HashMap<PathBuf, HashSet<OsString>> = HashMap::new();
    for item in &vs.items {
        ctl.check()?;
        for file in item
            .files
            .iter()
            .filter(|f| f.parent() != Some(item.dir.as_path()))
        {
            if let Slot::Vacant(slot) = present.entry(split(file).0) {
                let names = match dirs.dir(slot.key(), false) {
                    Ok(d) => d.list()?.into_iter().map(|(n, _)| n).collect(),
                    Err(e) if e.errno() == Some(Errno::ENOENT) => HashSet::new(),
                    Err(e) => return Err(e),
                };
                slot.insert(names);
            }
        }
        let mut found = Vec::new();
        // A planted symlink (the VM directory, or an image) refuses the batch: never unlinked
        // as if it were ours. A missing VM directory is fine (a snapshot volume never started).
        let dir = match dirs.dir(&item.dir, false) {
            Ok(d) => d,
            Err(e) if e.errno() == Some(Errno::ENOENT) => {
                images.push(found);
                continue;
            }
            Err(e) => return Err(e),
        };
        // With `base` the listing answers the running check too (no lstat of `busy`).
        let mut running = None;
        if let Some(base) = &item.base {
            running = Some(false);
            for (name, kind) in entries(&dir)? {
                if item.busy.as_ref() == Some(&name) {
                    running = Some(true);
                }
                if !is_image_of(base.as_bytes(), name.as_bytes()) {
                    continue;
                }
                if kind != Kind::File {
                    return Err(unsafe_path(
                        &dirs.path(&item.dir.join(&name)),
                        "remove",
                        "not a regular file (never removed as an image)",
                    ));
                }
                found.push(name);
            }
        }
        images.push(found);
        for file in item
            .files
            .iter()
            .filter(|f| f.parent() == Some(item.dir.as_path()))
        {
            let name = file.file_name().unwrap_or_default();
            match fstatat(dir.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {}
                Ok(_) => {
                    return Err(unsafe_path(
                        &dirs.path(file),
                        "remove",
                        "not a regular file (never removed as an image)",
                    ))
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(Error::os(e, "lstat").with_path(dirs.path(file))),
            }
        }
        if let Some(busy) = &item.busy {
            let running = match running {
                Some(listed) => listed,
                None => dirs.exists(&item.dir, busy)?,
            };
            if running {
                return Err(
                    Error::os(Errno::EBUSY, "remove").with_path(dirs.path(&item.dir.join(busy)))
                );
            }
        }
    }
    report.phase("check", &mut t);
    // The commit point: after the intent is durable the batch finishes (or recovery does).
    ctl.check()?;
    let (intent_dir, intent_name) = split(&spec.intent.0);
    let mut intent = Temp::create(&mut dirs, &intent_dir, &intent_name)?;
    sys::pwrite_all(intent.file.as_fd(), &spec.intent.1, 0)
        .map_err(|e| Error::os(e, "write").with_path(intent.path(&dirs)))?;
    intent
        .file
        .sync_all()
        .map_err(|e| Error::io(e, "fsync").with_path(intent.path(&dirs)))?;
    intent.rename(&dirs, false)?;
    let sessions = Arc::clone(&intent.dir_fd);
    sessions.fsync()?;
    report.phase("intent", &mut t);

    // Records first: a volume stops being listed before any of its files goes.
    let records = dirs.dir(&vs.records, false)?;
    for item in &vs.items {
        unlink_missing_ok(
            &dirs,
            &records,
            &vs.records,
            &item.record,
            UnlinkatFlags::NoRemoveDir,
        )?;
    }
    let mut touched: Vec<PathBuf> = vec![vs.records.clone()];
    for (n, (item, found)) in vs.items.iter().zip(&images).enumerate() {
        if !found.is_empty() {
            let dir = dirs.dir(&item.dir, false)?;
            for name in found {
                unlink_missing_ok(&dirs, &dir, &item.dir, name, UnlinkatFlags::NoRemoveDir)?;
            }
            touched.push(item.dir.clone());
        }
        for file in &item.files {
            let (parent, name) = split(file);
            if present
                .get(&parent)
                .is_some_and(|names| !names.contains(&name))
            {
                continue; // listed under the locks: it does not exist
            }
            let dir = match dirs.dir(&parent, false) {
                Ok(d) => d,
                Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            unlink_missing_ok(&dirs, &dir, &parent, &name, UnlinkatFlags::NoRemoveDir)?;
            touched.push(parent);
        }
        // rmdir takes only an empty directory: another volume of the VM keeps it.
        let (parent, name) = split(&item.dir);
        if let Ok(up) = dirs.dir(&parent, false) {
            match unlinkat(up.fd(), name.as_os_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) => touched.push(parent),
                Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EEXIST) => {}
                Err(e) => return Err(Error::os(e, "rmdir").with_path(dirs.path(&item.dir))),
            }
        }
        ctl.report(n as u64 + 1, total);
    }
    report.phase("unlink", &mut t);
    barrier(&mut dirs, vs.barrier, &[], &touched)?;
    report.phase("barrier", &mut t);
    // Durably gone before the locks go: a stale intent must never name a vid made again later.
    unlink_missing_ok(
        &dirs,
        &sessions,
        &intent_dir,
        &intent_name,
        UnlinkatFlags::NoRemoveDir,
    )?;
    sessions.fsync()?;
    drop(held);
    // The directories' descriptors (one per VM directory, most of them removed) close here, timed.
    drop(dirs);
    report.phase("release", &mut t);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::is_image_of;

    #[test]
    fn images_of_a_volume_by_name() {
        let yes = |n: &str| is_image_of(b"root", n.as_bytes());
        for n in [
            "root.img",
            "root-dirty.img",
            "root-precache.img",
            "root-import.img",
            "root.img.1@2026-12-06T16:46:28Z",
            "root.img.9007199254740990@2026-12-06T16:46:28Z",
            "root.img.base@0123456789abcdef0123456789abcdef",
            "root.img.partial@0123456789abcdef0123456789abcdef",
            "root.img~a1b2",
            "root-dirty.img~x",
            "root.img.99999999999999999@2026-12-06T16:46:28Z~t",
        ] {
            assert!(yes(n), "{n}");
        }
        for n in [
            "root",
            "root~",
            "root.img~",
            "private.img",
            "root-x.img",
            "xroot.img",
            ".img",
            "root-dirty.img.img",
            "root.img.0@2026-12-06T16:46:28Z",
            "root.img.1@2026-12-06T16:46:28",
            "root.img.1@2026-12-06 16:46:28Z",
            "root.img.9007199254740991@2026-12-06T16:46:28Z",
            "root.img.99999999999999999@2026-12-06T16:46:28Z",
            "root.img.base@0123456789ABCDEF0123456789abcdef",
            "root.img.base@0123",
        ] {
            assert!(!yes(n), "{n}");
        }
        // A base that is itself longer: `root-dirty.img` is `root`'s, never `root-dirty`'s.
        assert!(!is_image_of(b"root-dirty", b"root-dirty.img"));
        assert!(is_image_of(b"a.img.b", b"a.img.b.img"));
    }
}
