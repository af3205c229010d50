//! `writeFile`: small files (configs) written atomically and durably.

use std::path::PathBuf;

use napi::bindgen_prelude::{AsyncTask, Buffer, Null};
use napi_derive::napi;
use reflink_pool_core::durable;
use reflink_pool_core::Result;

use crate::outcome::{task, VoidOutcome};

pub struct WriteFileTask {
    path: PathBuf,
    /// Held by reference: the caller must not mutate it until the promise settles.
    data: Buffer,
    mode: u32,
}

impl WriteFileTask {
    fn run(&self) -> Result<Null> {
        durable::write_file(&self.path, &self.data, self.mode)?;
        Ok(Null)
    }
}

task!(WriteFileTask, VoidOutcome, "writeFile");

/// Temp file beside `path` + fsync + rename + dir fsync, with permission bits `mode`.
#[napi]
pub fn write_file(path: String, data: Buffer, mode: u32) -> AsyncTask<WriteFileTask> {
    AsyncTask::new(WriteFileTask {
        path: path.into(),
        data,
        mode,
    })
}
