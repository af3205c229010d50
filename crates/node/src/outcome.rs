//! Errors cross the task boundary as data, never as napi `GenericFailure`s.
//!
//! Every task's `compute` runs its core call through [`catch`], which turns a
//! core `Error` into a [`NativeError`] (errno + syscall + path + dest kept
//! intact) and a Rust panic into an `ERR_INTERNAL` one, so a bug can never
//! abort Node. Each task then resolves with an outcome object
//! `{ status: 'ok', value } | { status: 'error', error }` (see [`outcome!`]);
//! the TypeScript layer (`ts/binding.ts`) throws Node-shaped errors from it.
//!
//! `errno` is the POSITIVE OS errno (`ENOENT` = 2); TS negates it to match
//! Node's uv errors (`err.errno === -2`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use napi_derive::napi;
use reflink_pool_core::error::{codes, Error, Result};

/// An error as data: what TS needs to build a Node-shaped error.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeError {
    /// Errno name (`ENOENT`) or library code (`ERR_REFLINK_UNSUPPORTED`, `ABORT_ERR`, ...).
    pub code: String,
    /// Positive OS errno, absent for library codes.
    pub errno: Option<i32>,
    /// The syscall or step that failed, e.g. `open`, `ioctl(FICLONE)`.
    pub syscall: String,
    pub path: Option<String>,
    pub dest: Option<String>,
    /// Full Node-style message: `ENOENT: no such file or directory, open '/x'`.
    pub message: String,
}

impl From<Error> for NativeError {
    fn from(e: Error) -> Self {
        NativeError {
            code: e.code_name(),
            errno: e.errno,
            syscall: e.syscall.to_string(),
            path: e.path.as_deref().map(path_string),
            dest: e.dest.as_deref().map(path_string),
            message: e.to_string(),
        }
    }
}

pub fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Run `f` (a whole user-level core step) with a panic turned into an `ERR_INTERNAL` error.
pub fn catch<T>(step: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Error::lib(
                codes::ERR_INTERNAL,
                step,
                format!("internal error (Rust panic: {what})"),
            ))
        }
    }
}

/// Largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A JS number that must be a safe non-negative integer (TS validates first;
/// this is the defensive second check before any syscall).
pub fn to_u64(name: &'static str, v: f64) -> Result<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE_INTEGER as f64 {
        Ok(v as u64)
    } else {
        Err(Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "validate",
            format!("{name} must be a safe non-negative integer, got {v}"),
        ))
    }
}

/// A byte count for JS: exact below 2^53, else an error rather than a rounded number.
pub fn to_js(name: &'static str, v: u64) -> Result<f64> {
    if v <= MAX_SAFE_INTEGER {
        Ok(v as f64)
    } else {
        Err(Error::lib(
            codes::ERR_OUT_OF_RANGE,
            "convert",
            format!("{name} ({v}) exceeds Number.MAX_SAFE_INTEGER"),
        ))
    }
}

/// Declares a task outcome: `{ status: 'ok', value } | { status: 'error', error }`.
macro_rules! outcome {
    ($name:ident, $value:ty) => {
        #[napi_derive::napi(discriminant = "status", discriminant_case = "lowercase")]
        pub enum $name {
            Ok { value: $value },
            Error { error: $crate::outcome::NativeError },
        }

        impl From<reflink_pool_core::Result<$value>> for $name {
            fn from(r: reflink_pool_core::Result<$value>) -> Self {
                match r {
                    Ok(value) => $name::Ok { value },
                    Err(error) => $name::Error {
                        error: error.into(),
                    },
                }
            }
        }
    };
}
pub(crate) use outcome;

/// Implements `napi::Task` for a struct with `fn run(&self) -> reflink_pool_core::Result<T>`:
/// `compute` runs it under [`catch`] on the threadpool; `resolve` hands the outcome over.
macro_rules! task {
    ($task:ident, $outcome:ident, $step:literal) => {
        #[napi_derive::napi]
        impl napi::Task for $task {
            type Output = $outcome;
            type JsValue = $outcome;

            fn compute(&mut self) -> napi::Result<$outcome> {
                Ok($crate::outcome::catch($step, || self.run()).into())
            }

            fn resolve(&mut self, _env: napi::Env, output: $outcome) -> napi::Result<$outcome> {
                Ok(output)
            }
        }
    };
}
pub(crate) use task;

// A task with no value (`value` is always `null`).
outcome!(VoidOutcome, napi::bindgen_prelude::Null);
// A task answering yes/no.
outcome!(BoolOutcome, bool);
