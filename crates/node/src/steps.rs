//! Objects that work in steps: `SendStream`, `ReceiveStream` and `ImportWriter` each hold
//! one shared state between calls (the open sender, receiver or import file), and every
//! call is one task on the threadpool that runs an operation on that state. `Step` is
//! that task; each object declares its own (`pub type SendTask = Step<SendShared, SendOp>`)
//! and gives it a `run` and `task!`. The napi methods stay one per operation: napi
//! exports each as its own function.
//!
//! `Stream` is the state the two stream objects (`send_stream.rs`, `receive_stream.rs`)
//! share in shape: the pool file streamed, the base image, the cancel flag and the open
//! core state; each object keeps its own fields (header, key, staged file) beside it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::AsyncTask;
use reflink_pool_core::error::{codes, Error, Result};
use reflink_pool_core::Control;

use crate::cancel::CancelToken;
use crate::pool_dir::{target, PoolDir, Target, TargetResult};

/// One step of an object: its shared state and the operation to run on it.
pub struct Step<S, Op> {
    pub(crate) shared: Arc<S>,
    pub(crate) op: Op,
}

/// The task that runs `op` on `shared`.
pub(crate) fn step<S, Op>(shared: &Arc<S>, op: Op) -> AsyncTask<Step<S, Op>>
where
    Step<S, Op>: napi::Task,
{
    AsyncTask::new(Step {
        shared: Arc::clone(shared),
        op,
    })
}

/// Lock a state between steps. A step that panicked was caught and reported
/// (`outcome::catch`); the state it left is still the object's, so no poisoning.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a stream object keeps between its steps: the pool file it streams (`target`),
/// the committed image the stream is made or applied against (`base`), its cancel flag,
/// and the open core state (`None` before `open` and after `close`).
pub struct Stream<T> {
    pub(crate) target: TargetResult,
    pub(crate) base: Option<TargetResult>,
    pub(crate) cancel: Option<Arc<AtomicBool>>,
    pub(crate) state: Mutex<Option<T>>,
}

impl<T> Stream<T> {
    /// `target` and `base` of the pool `dir` (resolved when a step runs; no I/O here).
    pub(crate) fn new(
        dir: &PoolDir,
        target: String,
        base: Option<String>,
        cancel: Option<&CancelToken>,
    ) -> Self {
        Stream {
            target: dir.at(target),
            base: base.map(|b| dir.at(b)),
            cancel: cancel.map(CancelToken::flag),
            state: Mutex::new(None),
        }
    }

    /// The target's path shown in messages.
    pub(crate) fn shown(&self) -> PathBuf {
        self.target.as_ref().map(Target::shown).unwrap_or_default()
    }

    /// A step's control: the cancel flag, no progress (steps answer the offset reached).
    pub(crate) fn control(&self) -> Control<'_> {
        Control {
            cancel: self.cancel.as_deref(),
            progress: None,
        }
    }

    /// The open state, locked for one step.
    pub(crate) fn state(&self) -> MutexGuard<'_, Option<T>> {
        lock(&self.state)
    }
}

/// The open state, or `ERR_INVALID_ARG_VALUE` saying that the `what` is not open.
pub(crate) fn opened<'a, T>(state: &'a mut Option<T>, what: &str) -> Result<&'a mut T> {
    state.as_mut().ok_or_else(|| {
        Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "validate",
            format!("the {what} is not open"),
        )
    })
}

/// The one place the stream tasks open a committed image: `rel` of the pool, read-only, a
/// regular file reached without symlinks (`core::dir`). Returns it and its shown path.
pub(crate) fn open_read(at: &TargetResult) -> Result<(File, PathBuf)> {
    let entry = target(at)?.entry()?;
    Ok((entry.open_read()?, entry.shown()))
}

/// A committed image opened for a stream must have exactly the size its header states.
pub(crate) fn check_size(file: &File, path: &Path, want: u64) -> Result<()> {
    let got = file
        .metadata()
        .map_err(|e| Error::io(e, "fstat").with_path(path))?
        .len();
    if got == want {
        Ok(())
    } else {
        Err(Error::lib(
            codes::ERR_SOURCE_CHANGED,
            "send",
            format!("{got} bytes where {want} were expected"),
        )
        .with_path(path))
    }
}
