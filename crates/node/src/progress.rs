//! Progress from a worker thread to a JS callback, throttled.
//!
//! The core reports after every chunk; crossing to the JS thread costs a queue
//! entry and a callback, so we forward the first report (it tells the total),
//! then at most one per 64 MiB or 100 ms, each with a non-blocking call that
//! never stalls the copy. The LAST report is not sent: a threadsafe call may
//! land after the task's promise settled, so the task returns it with its
//! result instead (`last`), and TS delivers it before resolving. TS drops any
//! report still queued once the promise settled.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::FnArgs;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{bindgen_prelude::Unknown, Status};
use reflink_pool_core::Control;

/// `(doneBytes, totalBytes) => void`, called on the JS thread. Weak: a pending
/// report does not keep the process alive (the task itself does).
pub type ProgressFn = ThreadsafeFunction<
    FnArgs<(f64, f64)>,
    Unknown<'static>,
    FnArgs<(f64, f64)>,
    Status,
    false,
    true,
>;

const MIN_BYTES: u64 = 64 << 20;
const MIN_INTERVAL: Duration = Duration::from_millis(100);

pub struct Throttled {
    callback: ProgressFn,
    /// (bytes at last report sent, when); None before the first.
    sent: Mutex<Option<(u64, Instant)>>,
    /// The latest report from the core, sent or not: (done, total).
    latest: Mutex<Option<(u64, u64)>>,
}

impl Throttled {
    pub fn new(callback: ProgressFn) -> Self {
        Throttled {
            callback,
            sent: Mutex::new(None),
            latest: Mutex::new(None),
        }
    }

    /// The latest report from the core: the one TS delivers when the task settles.
    pub fn last(&self) -> Option<(u64, u64)> {
        *self
            .latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn report(&self, done: u64, total: u64) {
        *self
            .latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((done, total));
        let mut sent = self
            .sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = done < total
            && match *sent {
                None => true,
                Some((bytes, at)) => {
                    done.saturating_sub(bytes) >= MIN_BYTES || at.elapsed() >= MIN_INTERVAL
                }
            };
        if !due {
            return;
        }
        *sent = Some((done, Instant::now()));
        // A full queue or a closing env only drops this report; the copy goes on.
        let _ = self.callback.call(
            FnArgs::from((done as f64, total as f64)),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
}

/// Run `f` with the core's `Control` of a task: its cancel flag and its (optional)
/// throttled progress callback.
pub fn with_control<T>(
    cancel: Option<&AtomicBool>,
    progress: Option<&Throttled>,
    f: impl FnOnce(&Control) -> T,
) -> T {
    let report = |done: u64, total: u64| {
        if let Some(p) = progress {
            p.report(done, total)
        }
    };
    f(&Control {
        cancel,
        progress: Some(&report),
    })
}
