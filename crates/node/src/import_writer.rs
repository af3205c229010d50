//! `ImportWriter`: the sink of a stream import. Appends the stream's buffers, in order
//! from offset 0, to an existing (sparse) import file, leaving all-zero blocks as holes
//! wherever the buffers are cut (`core::zeroskip::ZeroSkipWriter`), and fsyncs once at
//! the end. A `write` takes a batch of buffers (JS hands over what the stream produced,
//! no staging copy) and runs as one task on the threadpool; the open file and the
//! writer's position live in the JS object between steps. Writes past the file's size at
//! open time are refused, so a stream longer than announced cannot grow it.
//! `pump` reads the stream itself from a pipe, FIFO or file path (the CLI's stdin as
//! `/dev/stdin`), opened O_NONBLOCK so neither the open nor a wait for input blocks a
//! cancelled import; no byte of it crosses into JavaScript.
//! The file is named `(PoolDir, rel)` and opened as a writable image: a regular
//! file with one link (a planted hardlink is refused, never written through).

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;
use reflink_pool_core::error::{codes, Error, Result};
use reflink_pool_core::zeroskip::ZeroSkipWriter;

use crate::cancel::CancelToken;
use crate::outcome::{outcome, task, to_js};
use crate::pool_dir::{target, PoolDir, Target, TargetResult};
use crate::progress::{with_control, ProgressFn, Throttled};
use crate::steps::{lock, step, Step};

struct Open {
    file: File,
    size: u64,
    writer: ZeroSkipWriter,
}

/// The import file and, once opened, the writer over it.
pub struct ImportShared {
    target: TargetResult,
    open: Mutex<Option<Open>>,
}

#[napi]
pub struct ImportWriter {
    shared: Arc<ImportShared>,
}

pub enum ImportOp {
    Open,
    Write {
        chunks: Vec<Buffer>,
    },
    Pump {
        source: PathBuf,
        cancel: Option<Arc<AtomicBool>>,
        progress: Option<Throttled>,
    },
    Finish,
    Close,
}

pub type ImportWriterTask = Step<ImportShared, ImportOp>;

/// Where the writer stands after a step.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeImportPosition {
    /// Bytes of the stream received so far (the file offset of the next byte).
    pub position: f64,
    /// Bytes really written so far (all-zero blocks are not).
    pub written: f64,
}

outcome!(ImportWriterOutcome, NativeImportPosition);

impl ImportWriterTask {
    /// A misuse of the writer (not open, or a write past the end), with the file's path.
    fn refuse(&self, detail: String) -> Error {
        Error::lib(codes::ERR_INVALID_ARG_VALUE, "write", detail).with_path(self.shown())
    }

    fn shown(&self) -> PathBuf {
        self.shared
            .target
            .as_ref()
            .map(Target::shown)
            .unwrap_or_default()
    }

    fn not_open(&self) -> Error {
        self.refuse("the import writer is not open".to_string())
    }

    fn run(&self) -> Result<NativeImportPosition> {
        let mut state = lock(&self.shared.open);
        match &self.op {
            ImportOp::Open => {
                let entry = target(&self.shared.target)?.entry()?;
                let file = entry.open_for_write()?;
                let meta = file
                    .metadata()
                    .map_err(|e| Error::io(e, "fstat").with_path(entry.shown()))?;
                // Zero detection granularity: the filesystem's preferred block size.
                let block = usize::try_from(meta.blksize()).unwrap_or(4096).max(512);
                let open = Open {
                    file,
                    size: meta.len(),
                    writer: ZeroSkipWriter::new(block)?,
                };
                let at = position(&open);
                *state = Some(open);
                at
            }
            ImportOp::Write { chunks } => {
                let open = state.as_mut().ok_or_else(|| self.not_open())?;
                let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
                let start = open.writer.position();
                if !matches!(start.checked_add(len), Some(end) if end <= open.size) {
                    return Err(self.refuse(format!(
                        "{len} bytes at offset {start} go past the import size {}",
                        open.size
                    )));
                }
                for chunk in chunks {
                    open.writer
                        .write(open.file.as_fd(), chunk)
                        .map_err(|e| e.with_path(self.shown()))?;
                }
                position(open)
            }
            ImportOp::Pump {
                source,
                cancel,
                progress,
            } => {
                let open = state.as_mut().ok_or_else(|| self.not_open())?;
                let input = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(source)
                    .map_err(|e| Error::io(e, "open").with_path(source))?;
                with_control(cancel.as_deref(), progress.as_ref(), |ctl| {
                    open.writer
                        .pump(input.as_fd(), open.file.as_fd(), open.size, ctl)
                })
                .map_err(|e| e.with_path(source).with_dest(self.shown()))?;
                position(open)
            }
            ImportOp::Finish => {
                let mut open = state.take().ok_or_else(|| self.not_open())?;
                open.writer
                    .finish(open.file.as_fd())
                    .map_err(|e| e.with_path(self.shown()))?;
                open.file
                    .sync_all()
                    .map_err(|e| Error::io(e, "fsync").with_path(self.shown()))?;
                position(&open)
            }
            ImportOp::Close => {
                let at = match state.as_ref() {
                    Some(open) => position(open),
                    None => Ok(NativeImportPosition {
                        position: 0.0,
                        written: 0.0,
                    }),
                };
                state.take();
                at
            }
        }
    }
}

fn position(open: &Open) -> Result<NativeImportPosition> {
    Ok(NativeImportPosition {
        position: to_js("position", open.writer.position())?,
        written: to_js("written", open.writer.written)?,
    })
}

task!(ImportWriterTask, ImportWriterOutcome, "importWriter");

#[napi]
impl ImportWriter {
    /// No syscall here: `open()` opens `rel` of the pool (which must exist, e.g. from
    /// `createSparseFileAt`, and be a regular file with one link).
    #[napi(constructor)]
    pub fn new(dir: &PoolDir, rel: String) -> Self {
        ImportWriter {
            shared: Arc::new(ImportShared {
                target: dir.at(rel),
                open: Mutex::new(None),
            }),
        }
    }

    #[napi]
    pub fn open(&self) -> AsyncTask<ImportWriterTask> {
        step(&self.shared, ImportOp::Open)
    }

    /// Append `chunks`, in order, to the stream; they must not change until the promise settles.
    #[napi]
    pub fn write(&self, chunks: Vec<Buffer>) -> AsyncTask<ImportWriterTask> {
        step(&self.shared, ImportOp::Write { chunks })
    }

    /// Read the stream from `source` (a pipe, FIFO or file path) to its end and append it.
    #[napi]
    pub fn pump(
        &self,
        source: String,
        cancel: Option<&CancelToken>,
        #[napi(ts_arg_type = "(doneBytes: number, totalBytes: number) => void")]
        on_progress: Option<ProgressFn>,
    ) -> AsyncTask<ImportWriterTask> {
        step(
            &self.shared,
            ImportOp::Pump {
                source: source.into(),
                cancel: cancel.map(CancelToken::flag),
                progress: on_progress.map(Throttled::new),
            },
        )
    }

    /// Write the last partial block, fsync and close.
    #[napi]
    pub fn finish(&self) -> AsyncTask<ImportWriterTask> {
        step(&self.shared, ImportOp::Finish)
    }

    /// Close without fsync (the import is being abandoned).
    #[napi]
    pub fn close(&self) -> AsyncTask<ImportWriterTask> {
        step(&self.shared, ImportOp::Close)
    }
}
