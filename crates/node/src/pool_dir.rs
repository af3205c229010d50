//! `PoolDir`: the open directory handle of a pool (`core::dir::Dir`), and `Target`, how a
//! task names its file: an ordinary path (the public primitives, for files outside pools)
//! or `(PoolDir, rel)` with `rel` relative to the pool root, resolved beneath it with no
//! symlink followed (docs/design.md §5).
//!
//! `new PoolDir(path)` does no syscall; `open()` (a threadpool task) opens and checks the
//! directory once (ownership and mode: `ERR_UNSAFE_PERMISSIONS`). Every pool task then
//! takes the object and a relative path: `copyFileAt(dir, 'appvms/a/private.img', ...)`.
//! Messages show paths as root + rel.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, Null};
use napi_derive::napi;
use reflink_pool_core::dir::{Dir, Entry};
use reflink_pool_core::error::{codes, Error, Result};

use crate::outcome::{task, VoidOutcome};

/// The handle of a `PoolDir`, shared with the tasks and objects (locks, import writers)
/// made from it: they take the `Dir` only while a step runs, so `close()` releases the
/// directory for all of them (an unmount is then not kept busy by a forgotten object).
#[derive(Clone, Default)]
pub struct Slot {
    path: PathBuf,
    dir: Arc<Mutex<Option<Arc<Dir>>>>,
}

impl Slot {
    /// The open handle; `ERR_INVALID_ARG_VALUE` before `open()` or after `close()`.
    pub fn get(&self) -> Result<Arc<Dir>> {
        self.dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                Error::lib(
                    codes::ERR_INVALID_ARG_VALUE,
                    "open",
                    "the pool directory is not open (open() first; not after close())",
                )
                .with_path(&self.path)
            })
    }

    fn set(&self, dir: Option<Arc<Dir>>) {
        *self.dir.lock().unwrap_or_else(|p| p.into_inner()) = dir;
    }
}

/// Where a task's file is.
pub enum Target {
    /// An ordinary path (symlinks followed like any tool, no ownership checks).
    Path(PathBuf),
    /// `rel` beneath a pool root.
    At(Slot, PathBuf),
}

impl Target {
    /// The file as (directory handle, name); its parent must exist.
    pub fn entry(&self) -> Result<Entry> {
        match self {
            Target::Path(p) => Entry::of_path(p),
            Target::At(slot, rel) => slot.get()?.entry(rel),
        }
    }

    /// The file as (directory handle, name), creating missing parents (pool: mode 0700;
    /// a path: as `mkdir -p`).
    pub fn entry_creating(&self) -> Result<Entry> {
        match self {
            Target::Path(p) => {
                reflink_pool_core::durable::mkdir_path(&reflink_pool_core::durable::parent_dir(p))?;
                Entry::of_path(p)
            }
            Target::At(slot, rel) => slot.get()?.entry_creating(rel),
        }
    }

    /// The directory itself (for directory-level steps: fsync, list, probe, statvfs).
    pub fn dir(&self) -> Result<Dir> {
        match self {
            Target::Path(p) => Dir::open_path(p),
            Target::At(slot, rel) => slot.get()?.open_dir(rel),
        }
    }

    /// The path shown in messages.
    pub fn shown(&self) -> PathBuf {
        match self {
            Target::Path(p) => p.clone(),
            Target::At(slot, rel) => slot.path.join(rel),
        }
    }
}

#[napi]
pub struct PoolDir {
    slot: Slot,
}

impl PoolDir {
    /// `rel` beneath this pool's root (resolved when a step runs).
    pub fn at(&self, rel: String) -> TargetResult {
        Ok(Target::At(self.slot.clone(), PathBuf::from(rel)))
    }

    /// The shared handle, for a task over many files of the pool.
    pub fn slot(&self) -> Slot {
        self.slot.clone()
    }
}

/// A task's target; an `Err` is reported by the task (errors as data).
pub type TargetResult = Result<Target>;

/// The target of a task, or the error its construction reported (cloned: a task may run a step twice).
pub fn target(t: &TargetResult) -> Result<&Target> {
    t.as_ref().map_err(Clone::clone)
}

pub struct OpenPoolDirTask {
    create: bool,
    slot: Slot,
}

impl OpenPoolDirTask {
    fn run(&self) -> Result<Null> {
        let path = self.slot.path.as_path();
        let dir = if self.create {
            reflink_pool_core::durable::create_root(path)?
        } else {
            Dir::open_root(path)?
        };
        self.slot.set(Some(Arc::new(dir)));
        Ok(Null)
    }
}

task!(OpenPoolDirTask, VoidOutcome, "openPoolDir");

#[napi]
impl PoolDir {
    /// No syscall here: `open()` opens and checks the directory.
    #[napi(constructor)]
    pub fn new(path: String) -> Self {
        PoolDir {
            slot: Slot {
                path: path.into(),
                dir: Arc::default(),
            },
        }
    }

    /// The pool directory as given (used to show paths in messages).
    #[napi(getter)]
    pub fn path(&self) -> String {
        crate::outcome::path_string(&self.slot.path)
    }

    /// Open the directory (a symlink at the path itself is followed, once) and check it:
    /// owned by this user or root, not writable by group or others
    /// (`ERR_UNSAFE_PERMISSIONS` otherwise). With `create`, a missing directory is
    /// created first (mode 0700 whatever the umask; missing parents as `mkdir -p`).
    #[napi]
    pub fn open(&self, create: bool) -> AsyncTask<OpenPoolDirTask> {
        AsyncTask::new(OpenPoolDirTask {
            create,
            slot: self.slot.clone(),
        })
    }

    /// Drop the handle, for this object and every lock or writer made from it (a step
    /// already running keeps it until it ends); later steps fail with
    /// `ERR_INVALID_ARG_VALUE`. Idempotent.
    #[napi]
    pub fn close(&self) {
        self.slot.set(None);
    }
}

/// Whether an error only says that something on the way does not exist.
fn missing(e: &Error) -> bool {
    e.code.is_none() && matches!(e.errno, Some(ENOENT | ENOTDIR))
}

/// Errnos, as the core reports them (positive).
const ENOENT: i32 = 2;
const ENOTDIR: i32 = 20;

/// `Ok(None)` for a missing entry or parent, else the result.
pub fn or_missing<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn entry_or_missing(t: &TargetResult) -> Result<Option<Entry>> {
    or_missing(target(t)?.entry())
}
