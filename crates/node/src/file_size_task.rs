//! `createSparseFile` and `resizeFile`: set a file's size without writing data.

use std::path::PathBuf;

use napi::bindgen_prelude::{AsyncTask, Null};
use napi_derive::napi;
use reflink_pool_core::Result;
use reflink_pool_core::{resize, sparse};

use crate::outcome::{task, to_u64, VoidOutcome};

pub enum SizeOp {
    /// A new file (atomically, durably, mode 0600) with no data blocks.
    CreateSparse,
    /// Truncate or extend in place (new space is a hole), then fsync.
    Resize,
}

pub struct FileSizeTask {
    op: SizeOp,
    path: PathBuf,
    size: f64,
}

impl FileSizeTask {
    fn run(&self) -> Result<Null> {
        let size = to_u64("size", self.size)?;
        match self.op {
            SizeOp::CreateSparse => sparse::create_sparse_file(&self.path, size)?,
            SizeOp::Resize => resize::resize_file(&self.path, size)?,
        }
        Ok(Null)
    }
}

task!(FileSizeTask, VoidOutcome, "fileSize");

fn spawn(op: SizeOp, path: String, size: f64) -> AsyncTask<FileSizeTask> {
    AsyncTask::new(FileSizeTask {
        op,
        path: path.into(),
        size,
    })
}

#[napi]
pub fn create_sparse_file(path: String, size: f64) -> AsyncTask<FileSizeTask> {
    spawn(SizeOp::CreateSparse, path, size)
}

#[napi]
pub fn resize_file(path: String, size: f64) -> AsyncTask<FileSizeTask> {
    spawn(SizeOp::Resize, path, size)
}
