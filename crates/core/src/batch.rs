//! Batch operations: many volumes made, started, stopped or removed in one group
//! commit each (`group_commit` holds the machinery: directories beneath the root,
//! temp files, barriers, locks).
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
//! `start_by_clone` and `remove_files` are the same idea for start and stop:
//! (snapshot volumes: link the source's clean image in first) clone each clean
//! image to a dirty temp, one barrier, renames, one barrier; unlinks, one barrier.
//!
//! `remove_volumes` deletes whole volumes: locks, the running check, then the
//! commit point (a durable intent naming the vids), the record unlinks, every
//! file's unlink, the empty VM directories, one barrier, and the intent's
//! removal. Before the intent nothing has changed (a refusal or an abort leaves
//! every volume whole); after it recovery finishes the removal of every vid it
//! names, so a crash leaves each volume whole or gone (docs/design.md §4, §7).
//!
//! Every operation takes the pool's directory handle (`dir::Dir`, opened and checked
//! once when the pool is opened): no path string is resolved again here. All
//! directory opening is in `group_commit::Beneath`: every component below the
//! root is opened with no symlink followed (a planted symlink is refused), and
//! every file is created, renamed and unlinked relative to a directory fd.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::unistd::linkat;

use crate::control::Control;
use crate::copy::{fill, CopyMethod, ReflinkMode};
use crate::dir::{unsafe_path, Dir, Kind};
use crate::error::{Error, Result};
use crate::group_commit::{
    barrier, lock_volumes, split, take_locks, Barrier, BatchReport, Beneath, Held, Unlinker,
};
use crate::image_names::is_image_of;
use crate::sys;
use crate::tempname::TempIn;

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

fn exists_error(path: PathBuf) -> Error {
    Error::os(Errno::EEXIST, "create").with_path(path)
}

/// Make many volumes in one group commit (module docs). Progress counts items.
/// A batch that fails or is cancelled leaves nothing, not even the directories
/// it created (removed while its locks are still held).
pub fn make(root: &Dir, spec: &MakeSpec, ctl: &Control) -> Result<BatchReport> {
    let mut t = Instant::now();
    ctl.check()?;
    let mut dirs = Beneath::open(root)?;
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
        .map(|s| dirs.open_source(s))
        .collect::<Result<Vec<_>>>()?;
    report.phase("lock", t);

    let total = spec.items.len() as u64;
    // Cancellation inside a long copy (no reflink here), but progress counts items.
    let inner = Control {
        cancel: ctl.cancel,
        progress: None,
    };
    let mut images: Vec<TempIn> = Vec::new();
    let mut records: Vec<TempIn> = Vec::with_capacity(spec.items.len());
    for (n, item) in spec.items.iter().enumerate() {
        ctl.check()?;
        dirs.dir(&item.dir, true)?;
        for img in &item.images {
            let temp = dirs.temp(&item.dir, &img.name)?;
            let method = match img.fill {
                Fill::Copy(s) => {
                    let (src, size, st) = &sources[s];
                    let out = fill(src.as_fd(), &temp.file, *size, *size, spec.reflink, &inner)
                        .map_err(|e| {
                            e.with_path(dirs.path(&spec.sources[s]))
                                .with_dest(temp.shown())
                        })?;
                    if img.copy_mtime {
                        let mtime = nix::sys::time::TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
                        nix::sys::stat::futimens(
                            &temp.file,
                            &nix::sys::time::TimeSpec::UTIME_OMIT,
                            &mtime,
                        )
                        .map_err(|e| Error::os(e, "futimens").with_path(temp.shown()))?;
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
                        .map_err(|e| Error::io(e, "ftruncate").with_path(temp.shown()))?;
                    CopyMethod::Empty
                }
            };
            report.count(method);
            images.push(temp);
        }
        let rec = dirs.temp(&spec.records, &item.record.0)?;
        sys::pwrite_all(rec.file.as_fd(), &item.record.1, 0)
            .map_err(|e| Error::os(e, "write").with_path(rec.shown()))?;
        records.push(rec);
        ctl.report(n as u64 + 1, total);
    }
    let (intent_dir, intent_name) = split(&spec.intent.0);
    let mut intent = dirs.temp(&intent_dir, &intent_name)?;
    sys::pwrite_all(intent.file.as_fd(), &spec.intent.1, 0)
        .map_err(|e| Error::os(e, "write").with_path(intent.shown()))?;
    report.phase("fill", t);

    // Barrier 1: data, temps and the intent durable (the intent under its final
    // name, its directory fsynced by the barrier) before any image name appears.
    intent
        .file
        .sync_all()
        .map_err(|e| Error::io(e, "fsync").with_path(intent.shown()))?;
    intent.rename(false)?;
    let _intent = Unlinker(Some(Arc::clone(&intent.dir)), vec![intent_name]);
    let all: Vec<&TempIn> = images.iter().chain(records.iter()).collect();
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
            img.rename(true)?;
            placed[n].0 = Some(Arc::clone(&img.dir));
            placed[n].1.push(img.target.clone());
        }
    }
    report.phase("rename", t);
    let touched: Vec<PathBuf> = spec.items.iter().map(|i| i.dir.clone()).collect();
    barrier(dirs, spec.barrier, &[], &touched)?;
    report.phase("barrier2", t);

    for (rec, undo) in records.iter_mut().zip(placed.iter_mut()) {
        rec.rename(true)?;
        undo.1.clear();
    }
    dirs.fsync_dirs([&spec.records])?;
    report.phase("records", t);
    // Every vid of the intent has its record now: unlink it (the caller then releases the locks).
    drop(placed);
    drop(_intent);
    Ok(report)
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
    /// Check for an abort and take every item's lock beneath `root`; each item's
    /// record must exist. The first phase, "lock", is timed.
    fn begin(&self, root: &Dir, ctl: &Control) -> Result<Begun> {
        let mut t = Instant::now();
        ctl.check()?;
        let (dirs, held) = lock_volumes(
            root,
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
pub fn start_by_clone(root: &Dir, spec: &StartSpec, ctl: &Control) -> Result<BatchReport> {
    let Begun(mut report, mut t, mut dirs, _held) = spec.begin(root, ctl)?;
    let total = spec.items.len() as u64;
    let mut temps: Vec<TempIn> = Vec::with_capacity(spec.items.len());
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
        let (src, size, _) = dirs.open_source(&item.dir.join(&item.clean))?;
        let temp = dirs.temp(&item.dir, &item.dirty)?;
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
                .with_dest(temp.shown())
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
    let all: Vec<&TempIn> = temps.iter().collect();
    barrier(&mut dirs, spec.barrier, &all, &[])?;
    report.phase("barrier", &mut t);
    ctl.check()?;
    for (temp, link) in temps.iter_mut().zip(links.iter_mut()) {
        temp.rename(false)?;
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
    dir.unlink_name(&item.clean)?;
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
pub fn remove_files(root: &Dir, spec: &RemoveSpec, ctl: &Control) -> Result<BatchReport> {
    let Begun(mut report, mut t, mut dirs, _held) = spec.begin(root, ctl)?;
    let total = spec.items.len() as u64;
    let mut touched = Vec::new();
    for (n, item) in spec.items.iter().enumerate() {
        let dir = match dirs.dir(&item.dir, false) {
            Ok(d) => d,
            Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        for name in &item.names {
            dir.unlink_name(name)?;
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
    /// The volume's image base name (`root` of `appvms/vm/root`): every image of the
    /// volume in `dir` (`image_names::is_image_of`) is found by listing `dir` under
    /// the lock and removed too.
    pub base: OsString,
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

/// Remove many whole volumes in one group commit (module docs). All or nothing up
/// to the commit point (the intent made durable): a busy item or a cancellation
/// before it changes nothing. An error after it leaves the intent in place, so
/// that recovery finishes the removal. Progress counts items.
pub fn remove_volumes(root: &Dir, spec: &DropSpec, ctl: &Control) -> Result<BatchReport> {
    let vs = &spec.volumes;
    let Begun(mut report, mut t, mut dirs, held) = vs.begin(root, ctl)?;
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
                    Ok(d) => d.entries()?.into_iter().map(|(n, _)| n).collect(),
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
        // The listing answers the running check too (no lstat of `busy`).
        let mut running = false;
        for (name, kind) in dir.entries()? {
            running |= item.busy.as_ref() == Some(&name);
            if !is_image_of(item.base.as_bytes(), name.as_bytes()) {
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
        images.push(found);
        for file in item
            .files
            .iter()
            .filter(|f| f.parent() == Some(item.dir.as_path()))
        {
            let name = file.file_name().unwrap_or_default();
            match dir.stat_name(name)? {
                Some(st) if Kind::of(&st) != Kind::File => {
                    return Err(unsafe_path(
                        &dirs.path(file),
                        "remove",
                        "not a regular file (never removed as an image)",
                    ))
                }
                _ => {}
            }
        }
        if let (Some(busy), true) = (&item.busy, running) {
            return Err(
                Error::os(Errno::EBUSY, "remove").with_path(dirs.path(&item.dir.join(busy)))
            );
        }
    }
    report.phase("check", &mut t);
    // The commit point: after the intent is durable the batch finishes (or recovery does).
    ctl.check()?;
    let (intent_dir, intent_name) = split(&spec.intent.0);
    let mut intent = dirs.temp(&intent_dir, &intent_name)?;
    sys::pwrite_all(intent.file.as_fd(), &spec.intent.1, 0)
        .map_err(|e| Error::os(e, "write").with_path(intent.shown()))?;
    intent
        .file
        .sync_all()
        .map_err(|e| Error::io(e, "fsync").with_path(intent.shown()))?;
    intent.rename(false)?;
    let sessions = Arc::clone(&intent.dir);
    sessions.fsync()?;
    report.phase("intent", &mut t);

    // Records first: a volume stops being listed before any of its files goes.
    let records = dirs.dir(&vs.records, false)?;
    for item in &vs.items {
        records.unlink_name(&item.record)?;
    }
    let mut touched: Vec<PathBuf> = vec![vs.records.clone()];
    for (n, (item, found)) in vs.items.iter().zip(&images).enumerate() {
        if !found.is_empty() {
            let dir = dirs.dir(&item.dir, false)?;
            for name in found {
                dir.unlink_name(name)?;
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
            dir.unlink_name(&name)?;
            touched.push(parent);
        }
        // rmdir takes only an empty directory: another volume of the VM keeps it.
        let (parent, name) = split(&item.dir);
        if let Ok(up) = dirs.dir(&parent, false) {
            if up.rmdir_name(&name)? {
                touched.push(parent);
            }
        }
        ctl.report(n as u64 + 1, total);
    }
    report.phase("unlink", &mut t);
    barrier(&mut dirs, vs.barrier, &[], &touched)?;
    report.phase("barrier", &mut t);
    // Durably gone before the locks go: a stale intent must never name a vid made again later.
    sessions.unlink_name(&intent_name)?;
    sessions.fsync()?;
    drop(held);
    // The directories' descriptors (one per VM directory, most of them removed) close here, timed.
    drop(dirs);
    report.phase("release", &mut t);
    Ok(report)
}
