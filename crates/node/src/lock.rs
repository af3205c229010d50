//! `VolumeLock`: one flock(2) volume lock (`core::lock`) owned by a JS object.
//!
//! Why tokio here and nowhere else: `acquire` may wait for another process for
//! as long as that process holds the volume. On the libuv threadpool (4
//! threads) four such waits would starve every other task of this process,
//! including the ones its own lock holders need to finish: a deadlock. So the
//! blocking flock runs on a tokio blocking thread (`spawn_blocking`, napi's
//! `tokio_rt` runtime), and the kernel wakes it when the lock is released. A
//! wait cannot be cancelled (flock has no timeout); the pool's in-process
//! queue keeps it to one waiting thread per volume.
//!
//! The lock file is named `(PoolDir, rel)`: the locks directory is resolved
//! beneath the pool root with no symlink followed (`core::dir`).
//!
//! `release` unlinks the lock file and closes the fd; dropping the object
//! (GC) closes the fd too, which releases the lock but leaves the file, as a
//! crash does (recovery then looks at that volume).

use std::sync::{Arc, Mutex, MutexGuard};

use napi::tokio::task::spawn_blocking;
use napi_derive::napi;
use reflink_pool_core::dir::Entry;
use reflink_pool_core::error::{codes, Error, Result};
use reflink_pool_core::lock::{self, LockFile};

use crate::outcome::{catch, BoolOutcome, VoidOutcome};
use crate::pool_dir::{target, PoolDir, Target};

#[derive(Default)]
enum State {
    #[default]
    Free,
    /// An acquire is in flight: a second one on the same object would wait on itself.
    Taking,
    Held(LockFile),
}

#[napi]
pub struct VolumeLock {
    target: Arc<Result<Target>>,
    state: Arc<Mutex<State>>,
}

/// Run a blocking core step on a tokio blocking thread, panics caught as `ERR_INTERNAL`.
async fn off_thread<T: Send + 'static>(
    step: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    spawn_blocking(move || catch(step, f))
        .await
        .unwrap_or_else(|e| {
            // Only when the runtime shuts down under the step (environment teardown).
            Err(Error::lib(
                codes::ERR_INTERNAL,
                step,
                format!("did not finish: {e}"),
            ))
        })
}

fn state(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl VolumeLock {
    fn misuse(&self, detail: &str) -> Error {
        let shown = self.target.as_ref().as_ref().map(Target::shown);
        Error::lib(codes::ERR_INVALID_ARG_VALUE, "flock", detail.to_string())
            .with_path(shown.unwrap_or_default())
    }

    /// Run one (possibly blocking) take off the JS thread and the libuv threadpool.
    async fn take(&self, how: fn(Entry) -> Result<Option<LockFile>>) -> Result<bool> {
        {
            let mut s = state(&self.state);
            if !matches!(*s, State::Free) {
                return Err(self.misuse("this lock is already held or being acquired"));
            }
            *s = State::Taking;
        }
        let shared = Arc::clone(&self.target);
        let taken = off_thread("flock", move || how(target(shared.as_ref())?.entry()?)).await;
        let mut s = state(&self.state);
        match taken {
            Ok(Some(held)) => {
                *s = State::Held(held);
                Ok(true)
            }
            Ok(None) => {
                *s = State::Free;
                Ok(false)
            }
            Err(e) => {
                *s = State::Free;
                Err(e)
            }
        }
    }
}

#[napi]
impl VolumeLock {
    /// No syscall here: `acquire()` / `tryAcquire()` open and lock `rel` of the pool.
    #[napi(constructor)]
    pub fn new(dir: &PoolDir, rel: String) -> Self {
        VolumeLock {
            target: Arc::new(dir.at(rel)),
            state: Arc::default(),
        }
    }

    /// Wait until this object holds the lock (another process or fd may hold it now).
    #[napi]
    pub async fn acquire(&self) -> VoidOutcome {
        self.take(|p| lock::lock(p).map(Some))
            .await
            .map(|_| napi::bindgen_prelude::Null)
            .into()
    }

    /// Take the lock only if nobody holds it; resolves whether it is now held.
    #[napi]
    pub async fn try_acquire(&self) -> BoolOutcome {
        self.take(lock::try_lock).await.into()
    }

    /// Unlink the lock file and release the lock; resolves whether it was held.
    /// The lock is released even when the unlink fails (the error says so).
    #[napi]
    pub async fn release(&self) -> BoolOutcome {
        let held = {
            let mut s = state(&self.state);
            match std::mem::take(&mut *s) {
                State::Held(held) => held,
                other => {
                    // Free (nothing to do) or Taking (that acquire keeps its claim).
                    *s = other;
                    return Ok(false).into();
                }
            }
        };
        off_thread("unlink", move || held.release().map(|()| true))
            .await
            .into()
    }
}
