//! `ExportReader`: the source of a stream export. Holds one open file (the committed
//! image, opened once, so a commit renaming a new image over the path cannot mix two
//! images into one stream) and a `core::sparse_reader::SparseReader` over `[start, end)`.
//! Each `read` is one task on the threadpool that fills the caller's buffer with the next
//! data (short holes inside it as zeros) and reports the long hole after it, which JS
//! produces from one shared zero buffer; nothing here holds the file's run map.
//! `pump` instead writes the whole rest of the range into a descriptor the caller holds
//! (the CLI's stdout, a FIFO it opened) in one task (`SparseReader::write_to`).

use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;
use reflink_pool_core::error::{codes, Error, Result};
use reflink_pool_core::sparse_reader::SparseReader;

use crate::cancel::CancelToken;
use crate::outcome::{outcome, task, to_js, to_u64};
use crate::pool_dir::{target, PoolDir, Target};
use crate::progress::{with_control, ProgressFn, Throttled};

type Shared = Arc<Mutex<Option<SparseReader>>>;

#[napi]
pub struct ExportReader {
    target: Arc<Result<Target>>,
    state: Shared,
}

fn shown(target: &Result<Target>) -> PathBuf {
    target.as_ref().map(Target::shown).unwrap_or_default()
}

/// What `open` found: the range that will be read and the file's identity.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeExportOpen {
    /// Apparent size of the file at open.
    pub size: f64,
    /// The range read: `start` and `end` clipped to the size.
    pub start: f64,
    pub end: f64,
    /// st_dev and st_ino (as `fs.Stats` numbers), to check the path still names this file.
    pub dev: f64,
    pub ino: f64,
}

/// One `read`: `data` bytes at the start of the buffer, then `hole` bytes of zeros.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeExportSegment {
    pub data: f64,
    pub hole: f64,
}

outcome!(ExportOpenOutcome, NativeExportOpen);
outcome!(ExportReadOutcome, NativeExportSegment);
outcome!(ExportPumpOutcome, f64);

fn lock(state: &Shared) -> MutexGuard<'_, Option<SparseReader>> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct ExportOpenTask {
    target: Arc<Result<Target>>,
    state: Shared,
    start: f64,
    end: Option<f64>,
}

impl ExportOpenTask {
    fn run(&self) -> Result<NativeExportOpen> {
        let start = to_u64("start", self.start)?;
        let end = self
            .end
            .map(|e| to_u64("end", e))
            .transpose()?
            .unwrap_or(u64::MAX);
        let entry = target(self.target.as_ref())?.entry()?;
        let file = entry.open_read()?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(e, "fstat").with_path(entry.shown()))?;
        let reader = SparseReader::new(file, start, end).map_err(|e| e.with_path(entry.shown()))?;
        let opened = NativeExportOpen {
            size: to_js("size", meta.len())?,
            start: to_js("start", reader.position())?,
            end: to_js("end", reader.end())?,
            dev: meta.dev() as f64,
            ino: meta.ino() as f64,
        };
        *lock(&self.state) = Some(reader);
        Ok(opened)
    }
}

task!(ExportOpenTask, ExportOpenOutcome, "exportReader.open");

pub struct ExportReadTask {
    target: Arc<Result<Target>>,
    state: Shared,
    buf: Buffer,
}

impl ExportReadTask {
    fn run(&mut self) -> Result<NativeExportSegment> {
        let mut state = lock(&self.state);
        let reader = state.as_mut().ok_or_else(|| not_open(&self.target))?;
        let seg = reader
            .read(&mut self.buf)
            .map_err(|e| e.with_path(shown(&self.target)))?;
        Ok(NativeExportSegment {
            data: seg.data as f64,
            hole: to_js("hole", seg.hole)?,
        })
    }
}

task!(ExportReadTask, ExportReadOutcome, "exportReader.read");

pub struct ExportPumpTask {
    target: Arc<Result<Target>>,
    state: Shared,
    fd: i32,
    cancel: Option<Arc<AtomicBool>>,
    progress: Option<Throttled>,
}

impl ExportPumpTask {
    fn run(&mut self) -> Result<f64> {
        let mut state = lock(&self.state);
        let reader = state.as_mut().ok_or_else(|| not_open(&self.target))?;
        if self.fd < 0 {
            return Err(Error::io(
                std::io::Error::from_raw_os_error(libc::EBADF),
                "write",
            ));
        }
        // SAFETY: the caller keeps `fd` open until this task settles (`pump`'s contract);
        // it is only written to, never closed here.
        let out = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let written = with_control(self.cancel.as_deref(), self.progress.as_ref(), |ctl| {
            reader.write_to(out, ctl)
        })
        .map_err(|e| e.with_path(shown(&self.target)))?;
        to_js("written", written)
    }
}

task!(ExportPumpTask, ExportPumpOutcome, "exportReader.pump");

fn not_open(target: &Result<Target>) -> Error {
    Error::lib(
        codes::ERR_INVALID_ARG_VALUE,
        "read",
        "the export reader is not open",
    )
    .with_path(shown(target))
}

#[napi]
impl ExportReader {
    /// No syscall here: `open()` opens `rel` of the directory handle (a regular file,
    /// never followed).
    #[napi(constructor)]
    pub fn new(dir: &PoolDir, rel: String) -> Self {
        ExportReader {
            target: Arc::new(dir.at(rel)),
            state: Arc::default(),
        }
    }

    /// Open the file and read `[start, end)` of it (`end` absent: to its end).
    #[napi]
    pub fn open(&self, start: f64, end: Option<f64>) -> AsyncTask<ExportOpenTask> {
        AsyncTask::new(ExportOpenTask {
            target: Arc::clone(&self.target),
            state: Arc::clone(&self.state),
            start,
            end,
        })
    }

    /// Fill `buf` with the next bytes; it must not be used until the promise settles.
    /// `{ data: 0, hole: 0 }` is the end.
    #[napi]
    pub fn read(&self, buf: Buffer) -> AsyncTask<ExportReadTask> {
        AsyncTask::new(ExportReadTask {
            target: Arc::clone(&self.target),
            state: Arc::clone(&self.state),
            buf,
        })
    }

    /// Write the rest of the range into the open descriptor `fd` (a pipe, FIFO, socket or
    /// file; written at its offset, holes as zeros); resolves to the bytes written. `fd`
    /// must stay open until the promise settles.
    #[napi]
    pub fn pump(
        &self,
        fd: i32,
        cancel: Option<&CancelToken>,
        #[napi(ts_arg_type = "(doneBytes: number, totalBytes: number) => void")]
        on_progress: Option<ProgressFn>,
    ) -> AsyncTask<ExportPumpTask> {
        AsyncTask::new(ExportPumpTask {
            target: Arc::clone(&self.target),
            state: Arc::clone(&self.state),
            fd,
            cancel: cancel.map(CancelToken::flag),
            progress: on_progress.map(Throttled::new),
        })
    }

    /// Close the file (a read in flight finishes first: it holds the lock). Idempotent.
    #[napi]
    pub fn close(&self) {
        lock(&self.state).take();
    }
}
