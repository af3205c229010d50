//! `remove`: unlink (ENOENT ignored) and fsync the directory.

use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::durable;
use reflink_pool_core::Result;

use crate::outcome::{task, BoolOutcome};

pub struct RemoveTask {
    path: PathBuf,
}

impl RemoveTask {
    fn run(&self) -> Result<bool> {
        durable::remove(&self.path)
    }
}

task!(RemoveTask, BoolOutcome, "remove");

/// Resolves with whether the file existed.
#[napi]
pub fn remove(path: String) -> AsyncTask<RemoveTask> {
    AsyncTask::new(RemoveTask { path: path.into() })
}
