//! Objects that work in steps: `SendStream`, `ReceiveStream` and `ImportWriter` each hold
//! one shared state between calls (the open sender, receiver or import file), and every
//! call is one task on the threadpool that runs an operation on that state. `Step` is
//! that task; each object declares its own (`pub type SendTask = Step<SendShared, SendOp>`)
//! and gives it a `run` and `task!`. The napi methods stay one per operation: napi
//! exports each as its own function.

use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::AsyncTask;

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
