//! `createSparseFile` and `resizeFile`: set a file's size without writing data
//! (by path, and `...At(dir, rel)` inside a pool).

use napi::bindgen_prelude::{AsyncTask, Null};
use napi_derive::napi;
use reflink_pool_core::Result;
use reflink_pool_core::{resize, sparse};

use crate::outcome::{task, to_u64, VoidOutcome};
use crate::pool_dir::{target, PoolDir, Target, TargetResult};

pub enum SizeOp {
    /// A new file (atomically, durably, mode 0600) with no data blocks.
    CreateSparse,
    /// Truncate or extend in place (new space is a hole), then fsync. In a pool the
    /// file must be a writable image (regular, one link).
    Resize,
}

pub struct FileSizeTask {
    op: SizeOp,
    target: TargetResult,
    size: f64,
}

impl FileSizeTask {
    fn run(&self) -> Result<Null> {
        let size = to_u64("size", self.size)?;
        let target = target(&self.target)?;
        match self.op {
            SizeOp::CreateSparse => sparse::create_sparse_entry(&target.entry_creating()?, size)?,
            SizeOp::Resize => resize::resize_entry(&target.entry()?, size)?,
        }
        Ok(Null)
    }
}

task!(FileSizeTask, VoidOutcome, "fileSize");

fn spawn(op: SizeOp, target: TargetResult, size: f64) -> AsyncTask<FileSizeTask> {
    AsyncTask::new(FileSizeTask { op, target, size })
}

#[napi]
pub fn create_sparse_file(path: String, size: f64) -> AsyncTask<FileSizeTask> {
    spawn(SizeOp::CreateSparse, Ok(Target::Path(path.into())), size)
}

#[napi]
pub fn resize_file(path: String, size: f64) -> AsyncTask<FileSizeTask> {
    spawn(SizeOp::Resize, Ok(Target::Path(path.into())), size)
}

/// `createSparseFile` of `rel` in the pool (parents created, mode 0700).
#[napi]
pub fn create_sparse_file_at(dir: &PoolDir, rel: String, size: f64) -> AsyncTask<FileSizeTask> {
    spawn(SizeOp::CreateSparse, dir.at(rel), size)
}

/// `resizeFile` of the writable image `rel` in the pool (refused unless one link).
#[napi]
pub fn resize_file_at(dir: &PoolDir, rel: String, size: f64) -> AsyncTask<FileSizeTask> {
    spawn(SizeOp::Resize, dir.at(rel), size)
}
