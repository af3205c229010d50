//! Progress from a worker thread to a JS callback, throttled.
//!
//! The core reports after every chunk; crossing to the JS thread costs a queue
//! entry and a callback, so we forward the first report (it tells the total),
//! then at most one per 64 MiB or 100 ms, and the final one, each with a
//! non-blocking call that never stalls the copy.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::FnArgs;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{bindgen_prelude::Unknown, Status};

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
    /// (bytes at last report, time of last report); None before the first.
    last: Mutex<Option<(u64, Instant)>>,
}

impl Throttled {
    pub fn new(callback: ProgressFn) -> Self {
        Throttled {
            callback,
            last: Mutex::new(None),
        }
    }

    pub fn report(&self, done: u64, total: u64) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = match *last {
            None => true,
            Some((bytes, _)) if bytes == done => false,
            Some((bytes, at)) => {
                done >= total
                    || done.saturating_sub(bytes) >= MIN_BYTES
                    || at.elapsed() >= MIN_INTERVAL
            }
        };
        if !due {
            return;
        }
        *last = Some((done, Instant::now()));
        // A full queue or a closing env only drops this report; the copy goes on.
        let _ = self.callback.call(
            FnArgs::from((done as f64, total as f64)),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
}
