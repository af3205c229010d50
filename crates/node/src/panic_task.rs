//! `__testPanic`: a task whose core step panics, so a test can prove a Rust
//! panic becomes a rejected promise (ERR_INTERNAL), never a dead process.
//! Not part of the public API.

use napi::bindgen_prelude::{AsyncTask, Null};
use napi_derive::napi;
use reflink_pool_core::Result;

use crate::outcome::{task, VoidOutcome};

pub struct PanicTask {
    message: String,
}

impl PanicTask {
    fn run(&self) -> Result<Null> {
        panic!("{}", self.message)
    }
}

task!(PanicTask, VoidOutcome, "__testPanic");

#[napi(js_name = "__testPanic")]
pub fn test_panic(message: String) -> AsyncTask<PanicTask> {
    AsyncTask::new(PanicTask { message })
}
