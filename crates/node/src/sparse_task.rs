//! `createSparseFile`: create (atomically, durably) a file with no data blocks.

use std::path::PathBuf;

use napi::bindgen_prelude::{AsyncTask, Null};
use napi_derive::napi;
use reflink_pool_core::sparse;
use reflink_pool_core::Result;

use crate::outcome::{task, to_u64, VoidOutcome};

pub struct SparseTask {
    path: PathBuf,
    size: f64,
}

impl SparseTask {
    fn run(&self) -> Result<Null> {
        sparse::create_sparse_file(&self.path, to_u64("size", self.size)?)?;
        Ok(Null)
    }
}

task!(SparseTask, VoidOutcome, "createSparseFile");

#[napi]
pub fn create_sparse_file(path: String, size: f64) -> AsyncTask<SparseTask> {
    AsyncTask::new(SparseTask {
        path: path.into(),
        size,
    })
}
