//! Batch tasks: many volumes' files in ONE threadpool task each (group commit,
//! `core::batch` over `core::group_commit`, docs/design.md §7). `makeVolumes`
//! clones or creates many volumes, `startByClone` starts many volumes (each dirty
//! image a clone of its clean image; a snapshot's clean image is linked from its
//! source first), `removeVolumeFiles` unlinks many volumes' files,
//! `removeVolumes` removes whole volumes (commit point: a durable intent); each
//! holds the volumes' flock locks for the whole task (the caller holds the
//! in-process queues first, so the blocking waits here only ever wait for other
//! processes). Progress counts items. Each takes the pool's directory handle
//! (`PoolDir`) and a spec whose paths are relative to it: no path string crosses
//! into the core after the pool is open (docs/design.md §5).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::batch::{
    self, DropItem, DropSpec, Fill, Item, MakeSpec, NewImage, RemoveItem, RemoveSpec, StartItem,
    StartSpec, VolumesSpec,
};
use reflink_pool_core::error::{codes, Error, Result};
use reflink_pool_core::group_commit::{Barrier, BatchReport};

use crate::cancel::CancelToken;
use crate::copy_task::{last_progress, reflink_mode, NativeProgress};
use crate::outcome::{outcome, task, to_u64};
use crate::pool_dir::{PoolDir, Slot};
use crate::progress::{with_control, ProgressFn, Throttled};

#[napi(object)]
pub struct NativeBatchImage {
    /// File name in the item's directory.
    pub name: String,
    /// Index into `sources`: the image is a copy of it. Else an empty sparse file of `size`.
    pub source: Option<u32>,
    pub size: Option<f64>,
    pub copy_mtime: Option<bool>,
}

#[napi(object)]
pub struct NativeMakeItem {
    /// VM directory relative to the root.
    pub dir: String,
    pub images: Vec<NativeBatchImage>,
    /// Record file name (in `records`) and its contents.
    pub record: String,
    pub record_data: String,
    /// Lock file name (in `locks`).
    pub lock: String,
}

#[napi(object)]
pub struct NativeMakeSpec {
    pub records: String,
    pub locks: String,
    pub sources: Vec<String>,
    pub items: Vec<NativeMakeItem>,
    /// Intent file, relative to the root, and its contents.
    pub intent: String,
    pub intent_data: String,
    #[napi(ts_type = "'syncfs' | 'fsync'")]
    pub barrier: String,
    #[napi(ts_type = "'auto' | 'always' | 'never'")]
    pub reflink: String,
}

#[napi(object)]
pub struct NativeStartItem {
    pub dir: String,
    pub clean: String,
    pub dirty: String,
    /// Snapshot volume: the source's clean image, relative to the root (absent:
    /// a save-on-stop volume cloned from its own clean image, an existing dirty image kept).
    pub source: Option<String>,
    pub record: String,
    pub lock: String,
}

#[napi(object)]
pub struct NativeStartSpec {
    pub records: String,
    pub locks: String,
    pub items: Vec<NativeStartItem>,
    #[napi(ts_type = "'syncfs' | 'fsync'")]
    pub barrier: String,
}

#[napi(object)]
pub struct NativeRemoveItem {
    pub dir: String,
    pub names: Vec<String>,
    pub record: String,
    pub lock: String,
}

#[napi(object)]
pub struct NativeRemoveSpec {
    pub records: String,
    pub locks: String,
    pub items: Vec<NativeRemoveItem>,
    #[napi(ts_type = "'syncfs' | 'fsync'")]
    pub barrier: String,
}

#[napi(object)]
pub struct NativeDropItem {
    /// VM directory relative to the root (removed when empty).
    pub dir: String,
    /// Files of the volume, relative to the root (missing ones are fine).
    pub files: Vec<String>,
    /// The volume's image base name: its images in `dir` are found by listing it under the lock.
    pub base: String,
    /// A name in `dir` whose existence refuses the batch (EBUSY): the dirty image unless forced.
    pub busy: Option<String>,
    pub record: String,
    pub lock: String,
}

#[napi(object)]
pub struct NativeDropSpec {
    pub records: String,
    pub locks: String,
    pub items: Vec<NativeDropItem>,
    /// Intent file, relative to the root, and its contents.
    pub intent: String,
    pub intent_data: String,
    #[napi(ts_type = "'syncfs' | 'fsync'")]
    pub barrier: String,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeBatchPhase {
    pub name: String,
    pub ms: f64,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeBatchResult {
    /// Wall time of each phase, in order.
    pub phases: Vec<NativeBatchPhase>,
    /// Images made per copy method: `{ method, count }`.
    pub methods: Vec<NativeMethodCount>,
    /// The last progress report (see `copy_task`).
    pub last_progress: Option<NativeProgress>,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeMethodCount {
    /// One of `CopyMethod::ALL` (the literal below is checked against it by
    /// `__test__/error-codes-parity.test.ts`).
    #[napi(ts_type = "'reflink' | 'copy-range' | 'read-write' | 'empty'")]
    pub method: String,
    pub count: f64,
}

outcome!(BatchOutcome, NativeBatchResult);

fn barrier_kind(s: &str) -> Result<Barrier> {
    match s {
        "syncfs" => Ok(Barrier::Syncfs),
        "fsync" => Ok(Barrier::Fsync),
        other => Err(Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "validate",
            format!("barrier must be 'syncfs' or 'fsync', got '{other}'"),
        )),
    }
}

pub enum BatchOp {
    Make(NativeMakeSpec),
    Start(NativeStartSpec),
    Remove(NativeRemoveSpec),
    Drop(NativeDropSpec),
}

pub struct BatchTask {
    /// The pool's directory handle: every path of the spec is relative to it.
    root: Slot,
    op: BatchOp,
    cancel: Option<Arc<AtomicBool>>,
    progress: Option<Throttled>,
}

impl BatchTask {
    fn make_spec(s: &NativeMakeSpec) -> Result<MakeSpec> {
        let items = s
            .items
            .iter()
            .map(|i| {
                let images = i
                    .images
                    .iter()
                    .map(|img| {
                        let fill = match (img.source, img.size) {
                            (Some(n), _) if (n as usize) < s.sources.len() => {
                                Fill::Copy(n as usize)
                            }
                            (None, Some(size)) => Fill::Sparse(to_u64("size", size)?),
                            _ => {
                                return Err(Error::lib(
                                    codes::ERR_INVALID_ARG_VALUE,
                                    "validate",
                                    format!(
                                        "image {} needs a valid source index or a size",
                                        img.name
                                    ),
                                ))
                            }
                        };
                        Ok(NewImage {
                            name: img.name.clone().into(),
                            fill,
                            copy_mtime: img.copy_mtime.unwrap_or(false),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Item {
                    dir: PathBuf::from(&i.dir),
                    images,
                    record: (i.record.clone().into(), i.record_data.clone().into_bytes()),
                    lock: i.lock.clone().into(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(MakeSpec {
            records: PathBuf::from(&s.records),
            locks: PathBuf::from(&s.locks),
            sources: s.sources.iter().map(PathBuf::from).collect(),
            items,
            intent: (PathBuf::from(&s.intent), s.intent_data.clone().into_bytes()),
            barrier: barrier_kind(&s.barrier)?,
            reflink: reflink_mode(&s.reflink)?,
        })
    }

    fn start_spec(s: &NativeStartSpec) -> Result<StartSpec> {
        Ok(StartSpec {
            records: PathBuf::from(&s.records),
            locks: PathBuf::from(&s.locks),
            items: s
                .items
                .iter()
                .map(|i| StartItem {
                    dir: PathBuf::from(&i.dir),
                    clean: i.clean.clone().into(),
                    dirty: i.dirty.clone().into(),
                    source: i.source.as_ref().map(PathBuf::from),
                    record: i.record.clone().into(),
                    lock: i.lock.clone().into(),
                })
                .collect(),
            barrier: barrier_kind(&s.barrier)?,
        })
    }

    fn remove_spec(s: &NativeRemoveSpec) -> Result<RemoveSpec> {
        Ok(RemoveSpec {
            records: PathBuf::from(&s.records),
            locks: PathBuf::from(&s.locks),
            items: s
                .items
                .iter()
                .map(|i| RemoveItem {
                    dir: PathBuf::from(&i.dir),
                    names: i.names.iter().map(Into::into).collect(),
                    record: i.record.clone().into(),
                    lock: i.lock.clone().into(),
                })
                .collect(),
            barrier: barrier_kind(&s.barrier)?,
        })
    }

    fn drop_spec(s: &NativeDropSpec) -> Result<DropSpec> {
        Ok(DropSpec {
            volumes: VolumesSpec {
                records: PathBuf::from(&s.records),
                locks: PathBuf::from(&s.locks),
                items: s
                    .items
                    .iter()
                    .map(|i| DropItem {
                        dir: PathBuf::from(&i.dir),
                        files: i.files.iter().map(PathBuf::from).collect(),
                        base: i.base.clone().into(),
                        busy: i.busy.as_ref().map(Into::into),
                        record: i.record.clone().into(),
                        lock: i.lock.clone().into(),
                    })
                    .collect(),
                barrier: barrier_kind(&s.barrier)?,
            },
            intent: (PathBuf::from(&s.intent), s.intent_data.clone().into_bytes()),
        })
    }

    fn run(&self) -> Result<NativeBatchResult> {
        let root = self.root.get()?;
        let out: BatchReport = with_control(
            self.cancel.as_deref(),
            self.progress.as_ref(),
            |ctl| match &self.op {
                BatchOp::Make(s) => batch::make(&root, &Self::make_spec(s)?, ctl),
                BatchOp::Start(s) => batch::start_by_clone(&root, &Self::start_spec(s)?, ctl),
                BatchOp::Remove(s) => batch::remove_files(&root, &Self::remove_spec(s)?, ctl),
                BatchOp::Drop(s) => batch::remove_volumes(&root, &Self::drop_spec(s)?, ctl),
            },
        )?;
        let last_progress = last_progress(self.progress.as_ref())?;
        Ok(NativeBatchResult {
            phases: out
                .phases
                .iter()
                .map(|(name, ns)| NativeBatchPhase {
                    name: name.to_string(),
                    ms: *ns as f64 / 1e6,
                })
                .collect(),
            methods: out
                .methods
                .iter()
                .map(|(m, n)| NativeMethodCount {
                    method: m.as_str().to_string(),
                    count: *n as f64,
                })
                .collect(),
            last_progress,
        })
    }
}

task!(BatchTask, BatchOutcome, "batch");

fn spawn(
    dir: &PoolDir,
    op: BatchOp,
    cancel: Option<&CancelToken>,
    on_progress: Option<ProgressFn>,
) -> AsyncTask<BatchTask> {
    AsyncTask::new(BatchTask {
        root: dir.slot(),
        op,
        cancel: cancel.map(CancelToken::flag),
        progress: on_progress.map(Throttled::new),
    })
}

/// Clone or create many volumes in one group commit. Never rejects: errors come back as data.
#[napi]
pub fn make_volumes(
    dir: &PoolDir,
    spec: NativeMakeSpec,
    cancel: Option<&CancelToken>,
    #[napi(ts_arg_type = "(doneItems: number, totalItems: number) => void")] on_progress: Option<
        ProgressFn,
    >,
) -> AsyncTask<BatchTask> {
    spawn(dir, BatchOp::Make(spec), cancel, on_progress)
}

/// Start many volumes: clone each clean image to its dirty image (a snapshot volume's
/// clean image linked from its source first); one barrier, renames, one barrier.
#[napi]
pub fn start_by_clone(
    dir: &PoolDir,
    spec: NativeStartSpec,
    cancel: Option<&CancelToken>,
    #[napi(ts_arg_type = "(doneItems: number, totalItems: number) => void")] on_progress: Option<
        ProgressFn,
    >,
) -> AsyncTask<BatchTask> {
    spawn(dir, BatchOp::Start(spec), cancel, on_progress)
}

/// Unlink many volumes' files (missing ones are fine), then one barrier.
#[napi]
pub fn remove_volume_files(
    dir: &PoolDir,
    spec: NativeRemoveSpec,
    cancel: Option<&CancelToken>,
    #[napi(ts_arg_type = "(doneItems: number, totalItems: number) => void")] on_progress: Option<
        ProgressFn,
    >,
) -> AsyncTask<BatchTask> {
    spawn(dir, BatchOp::Remove(spec), cancel, on_progress)
}

/// Remove many whole volumes: locks, the running check, a durable intent (the
/// commit point), record and file unlinks, one barrier.
#[napi]
pub fn remove_volumes(
    dir: &PoolDir,
    spec: NativeDropSpec,
    cancel: Option<&CancelToken>,
    #[napi(ts_arg_type = "(doneItems: number, totalItems: number) => void")] on_progress: Option<
        ProgressFn,
    >,
) -> AsyncTask<BatchTask> {
    spawn(dir, BatchOp::Drop(spec), cancel, on_progress)
}
