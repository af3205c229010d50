//! Durable namespace ops for the policy layer: each is one task that does the
//! syscall and the directory fsync(s) that make it survive power loss. Each op
//! exists by path (files outside pools) and `...At(dir, rel)` (inside a pool,
//! resolved beneath its root: `pool_dir::Target`).

use napi::bindgen_prelude::{AsyncTask, Null};
use napi_derive::napi;
use reflink_pool_core::durable;
use reflink_pool_core::Result;

use crate::outcome::{task, BoolOutcome, VoidOutcome};
use crate::pool_dir::{entry_or_missing, target, PoolDir, Target, TargetResult};

pub enum DurableOp {
    Hardlink {
        src: TargetResult,
        dst: TargetResult,
    },
    Rename {
        src: TargetResult,
        dst: TargetResult,
    },
    Mkdir(TargetResult),
    FsyncFile(TargetResult),
    FsyncDir(TargetResult),
}

pub struct DurableTask {
    op: DurableOp,
}

impl DurableTask {
    fn run(&self) -> Result<Null> {
        match &self.op {
            DurableOp::Hardlink { src, dst } => {
                durable::hardlink(&target(src)?.entry()?, &target(dst)?.entry_creating()?)?
            }
            DurableOp::Rename { src, dst } => {
                durable::rename(&target(src)?.entry()?, &target(dst)?.entry_creating()?)?
            }
            DurableOp::Mkdir(t) => match target(t)? {
                Target::Path(p) => durable::mkdir_path(p)?,
                Target::At(slot, rel) => drop(slot.get()?.create_dir_all(rel)?),
            },
            DurableOp::FsyncFile(t) => durable::fsync_file(&target(t)?.entry()?)?,
            DurableOp::FsyncDir(t) => target(t)?.dir()?.fsync()?,
        }
        Ok(Null)
    }
}

task!(DurableTask, VoidOutcome, "durable");

fn spawn(op: DurableOp) -> AsyncTask<DurableTask> {
    AsyncTask::new(DurableTask { op })
}

fn path(p: String) -> TargetResult {
    Ok(Target::Path(p.into()))
}

/// link(2) `src` to `dst`, then fsync `dst`'s directory.
#[napi]
pub fn hardlink(src: String, dst: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::Hardlink {
        src: path(src),
        dst: path(dst),
    })
}

/// rename(2) `src` over `dst`, then fsync both directories.
#[napi]
pub fn rename(src: String, dst: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::Rename {
        src: path(src),
        dst: path(dst),
    })
}

/// mkdir -p `path`, fsyncing each parent whose entry was created.
#[napi]
pub fn mkdir(path: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::Mkdir(Ok(Target::Path(path.into()))))
}

/// fsync a file.
#[napi]
pub fn fsync_file(path: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::FsyncFile(Ok(Target::Path(path.into()))))
}

/// fsync a directory.
#[napi]
pub fn fsync_dir(path: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::FsyncDir(Ok(Target::Path(path.into()))))
}

/// `hardlink` of `src` to `dst`, both relative to the pool root (no symlink followed).
#[napi]
pub fn hardlink_at(dir: &PoolDir, src: String, dst: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::Hardlink {
        src: dir.at(src),
        dst: dir.at(dst),
    })
}

/// `rename` of `src` over `dst`, both relative to the pool root (no symlink followed).
#[napi]
pub fn rename_at(dir: &PoolDir, src: String, dst: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::Rename {
        src: dir.at(src),
        dst: dir.at(dst),
    })
}

/// mkdir -p of `rel` beneath the pool root: new directories are mode 0700 (whatever
/// the umask), each new entry's parent fsynced; existing ones must be real directories.
#[napi]
pub fn mkdir_at(dir: &PoolDir, rel: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::Mkdir(dir.at(rel)))
}

/// fsync the regular file `rel` of the pool.
#[napi]
pub fn fsync_file_at(dir: &PoolDir, rel: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::FsyncFile(dir.at(rel)))
}

/// fsync the directory `rel` of the pool (`''`: the root).
#[napi]
pub fn fsync_dir_at(dir: &PoolDir, rel: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::FsyncDir(dir.at(rel)))
}

pub enum RemoveOp {
    File(TargetResult),
    EmptyDir(TargetResult),
}

pub struct RemoveTask {
    op: RemoveOp,
}

impl RemoveTask {
    fn run(&self) -> Result<bool> {
        match &self.op {
            // A missing parent directory: nothing to remove (as unlink's ENOENT).
            RemoveOp::File(t) => match entry_or_missing(t)? {
                Some(entry) => durable::remove(&entry),
                None => Ok(false),
            },
            RemoveOp::EmptyDir(t) => match entry_or_missing(t)? {
                Some(entry) => durable::remove_dir(&entry),
                None => Ok(false),
            },
        }
    }
}

task!(RemoveTask, BoolOutcome, "remove");

/// unlink (ENOENT ignored), fsync the directory; resolves with whether the file existed.
#[napi]
pub fn remove(path: String) -> AsyncTask<RemoveTask> {
    AsyncTask::new(RemoveTask {
        op: RemoveOp::File(Ok(Target::Path(path.into()))),
    })
}

/// `remove` of `rel` in the pool.
#[napi]
pub fn remove_at(dir: &PoolDir, rel: String) -> AsyncTask<RemoveTask> {
    AsyncTask::new(RemoveTask {
        op: RemoveOp::File(dir.at(rel)),
    })
}

/// rmdir of the directory `rel` of the pool when it is empty, then fsync its parent;
/// resolves whether it was removed (false: missing or not empty).
#[napi]
pub fn remove_empty_dir_at(dir: &PoolDir, rel: String) -> AsyncTask<RemoveTask> {
    AsyncTask::new(RemoveTask {
        op: RemoveOp::EmptyDir(dir.at(rel)),
    })
}
