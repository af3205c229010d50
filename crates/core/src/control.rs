//! Cooperative cancellation and progress for long operations.
//!
//! The binding cannot interrupt a syscall already running on the threadpool;
//! instead the copy loops check `Control::check` between chunks (at most one
//! chunk of work after an abort), and report progress through a callback that
//! the binding forwards to JS with a threadsafe function.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{codes, Error, Result};

/// Progress callback: `(done_bytes, total_bytes)`.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

#[derive(Default, Clone, Copy)]
pub struct Control<'a> {
    pub cancel: Option<&'a AtomicBool>,
    pub progress: Option<Progress<'a>>,
}

impl<'a> Control<'a> {
    pub const NONE: Control<'static> = Control {
        cancel: None,
        progress: None,
    };

    /// Fails with `ABORT_ERR` once cancellation was requested.
    pub fn check(&self) -> Result<()> {
        match self.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::lib(
                codes::ABORT_ERR,
                "abort",
                "the operation was aborted",
            )),
            _ => Ok(()),
        }
    }

    pub fn report(&self, done: u64, total: u64) {
        if let Some(p) = self.progress {
            p(done, total);
        }
    }
}
