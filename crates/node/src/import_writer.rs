//! `ImportWriter`: the sink of a stream import. Writes chunks at offsets into an
//! existing (sparse) import file, leaving all-zero blocks as holes (zeroskip),
//! and fsyncs once at the end. Every step is a task on the threadpool; the open
//! file lives in the JS object between steps. Writes past the file's size at
//! open time are refused, so a stream longer than announced cannot grow it.
//! The file is named `(PoolDir, rel)` and opened as a writable image: a regular
//! file with one link (a planted hardlink is refused, never written through).

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;
use reflink_pool_core::error::{codes, Error, Result};
use reflink_pool_core::zeroskip;

use crate::outcome::{outcome, task, to_js, to_u64};
use crate::pool_dir::{PoolDir, Target};

struct Open {
    file: File,
    size: u64,
    /// Zero detection granularity: the filesystem's preferred block size.
    block: usize,
}

type Shared = Arc<Mutex<Option<Open>>>;

#[napi]
pub struct ImportWriter {
    target: Arc<Result<Target>>,
    state: Shared,
}

pub enum ImportOp {
    Open,
    Write { offset: f64, data: Buffer },
    Finish,
    Close,
}

pub struct ImportWriterTask {
    target: Arc<Result<Target>>,
    state: Shared,
    op: ImportOp,
}

// Bytes actually written (zero blocks skipped); 0 for open/finish/close.
outcome!(ImportWriterOutcome, f64);

fn lock(state: &Shared) -> MutexGuard<'_, Option<Open>> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ImportWriterTask {
    /// A misuse of the writer (not open, or a write past the end), with the file's path.
    fn refuse(&self, detail: String) -> Error {
        Error::lib(codes::ERR_INVALID_ARG_VALUE, "write", detail).with_path(self.shown())
    }

    fn shown(&self) -> std::path::PathBuf {
        self.target
            .as_ref()
            .as_ref()
            .map(Target::shown)
            .unwrap_or_default()
    }

    fn not_open(&self) -> Error {
        self.refuse("the import writer is not open".to_string())
    }

    fn run(&self) -> Result<f64> {
        let mut state = lock(&self.state);
        match &self.op {
            ImportOp::Open => {
                let entry = self
                    .target
                    .as_ref()
                    .as_ref()
                    .map_err(Clone::clone)?
                    .entry()?;
                let file = entry.open_for_write()?;
                let meta = file
                    .metadata()
                    .map_err(|e| Error::io(e, "fstat").with_path(entry.shown()))?;
                let block = usize::try_from(meta.blksize()).unwrap_or(4096).max(512);
                *state = Some(Open {
                    file,
                    size: meta.len(),
                    block,
                });
                Ok(0.0)
            }
            ImportOp::Write { offset, data } => {
                let open = state.as_ref().ok_or_else(|| self.not_open())?;
                let offset = to_u64("offset", *offset)?;
                let fits = offset
                    .checked_add(data.len() as u64)
                    .is_some_and(|end| end <= open.size);
                if !fits {
                    return Err(self.refuse(format!(
                        "{} bytes at offset {offset} go past the import size {}",
                        data.len(),
                        open.size
                    )));
                }
                let written =
                    zeroskip::write_skipping_zeros(open.file.as_fd(), offset, data, open.block)
                        .map_err(|e| e.with_path(self.shown()))?;
                to_js("written", written)
            }
            ImportOp::Finish => {
                let open = state.take().ok_or_else(|| self.not_open())?;
                open.file
                    .sync_all()
                    .map_err(|e| Error::io(e, "fsync").with_path(self.shown()))?;
                Ok(0.0)
            }
            ImportOp::Close => {
                state.take();
                Ok(0.0)
            }
        }
    }
}

task!(ImportWriterTask, ImportWriterOutcome, "importWriter");

#[napi]
impl ImportWriter {
    /// No syscall here: `open()` opens `rel` of the pool (which must exist, e.g. from
    /// `createSparseFileAt`, and be a regular file with one link).
    #[napi(constructor)]
    pub fn new(dir: &PoolDir, rel: String) -> Self {
        ImportWriter {
            target: Arc::new(dir.at(rel)),
            state: Arc::default(),
        }
    }

    fn task(&self, op: ImportOp) -> AsyncTask<ImportWriterTask> {
        AsyncTask::new(ImportWriterTask {
            target: Arc::clone(&self.target),
            state: Arc::clone(&self.state),
            op,
        })
    }

    #[napi]
    pub fn open(&self) -> AsyncTask<ImportWriterTask> {
        self.task(ImportOp::Open)
    }

    /// Write `data` at `offset`; the buffer must not change until the promise settles.
    #[napi]
    pub fn write(&self, offset: f64, data: Buffer) -> AsyncTask<ImportWriterTask> {
        self.task(ImportOp::Write { offset, data })
    }

    /// fsync and close.
    #[napi]
    pub fn finish(&self) -> AsyncTask<ImportWriterTask> {
        self.task(ImportOp::Finish)
    }

    /// Close without fsync (the import is being abandoned).
    #[napi]
    pub fn close(&self) -> AsyncTask<ImportWriterTask> {
        self.task(ImportOp::Close)
    }
}
