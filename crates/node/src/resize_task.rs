//! `resizeFile`: truncate or extend a file in place, then fsync it.

use std::path::PathBuf;

use napi::bindgen_prelude::{AsyncTask, Null};
use napi_derive::napi;
use reflink_pool_core::resize;
use reflink_pool_core::Result;

use crate::outcome::{task, to_u64, VoidOutcome};

pub struct ResizeTask {
    path: PathBuf,
    size: f64,
}

impl ResizeTask {
    fn run(&self) -> Result<Null> {
        resize::resize_file(&self.path, to_u64("size", self.size)?)?;
        Ok(Null)
    }
}

task!(ResizeTask, VoidOutcome, "resizeFile");

#[napi]
pub fn resize_file(path: String, size: f64) -> AsyncTask<ResizeTask> {
    AsyncTask::new(ResizeTask {
        path: path.into(),
        size,
    })
}
