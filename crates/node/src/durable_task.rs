//! Durable namespace ops for the policy layer: each is one task that does the
//! syscall and the directory fsync(s) that make it survive power loss.

use std::path::PathBuf;

use napi::bindgen_prelude::{AsyncTask, Null};
use napi_derive::napi;
use reflink_pool_core::durable;
use reflink_pool_core::Result;

use crate::outcome::{task, VoidOutcome};

pub enum DurableOp {
    Hardlink { src: PathBuf, dst: PathBuf },
    Rename { src: PathBuf, dst: PathBuf },
    Mkdir(PathBuf),
    FsyncFile(PathBuf),
    FsyncDir(PathBuf),
}

pub struct DurableTask {
    op: DurableOp,
}

impl DurableTask {
    fn run(&self) -> Result<Null> {
        match &self.op {
            DurableOp::Hardlink { src, dst } => durable::hardlink(src, dst)?,
            DurableOp::Rename { src, dst } => durable::rename(src, dst)?,
            DurableOp::Mkdir(path) => durable::mkdir(path)?,
            DurableOp::FsyncFile(path) => durable::fsync_file(path)?,
            DurableOp::FsyncDir(path) => durable::fsync_dir(path)?,
        }
        Ok(Null)
    }
}

task!(DurableTask, VoidOutcome, "durable");

fn spawn(op: DurableOp) -> AsyncTask<DurableTask> {
    AsyncTask::new(DurableTask { op })
}

/// link(2) `src` to `dst`, then fsync `dst`'s directory.
#[napi]
pub fn hardlink(src: String, dst: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::Hardlink {
        src: src.into(),
        dst: dst.into(),
    })
}

/// rename(2) `src` over `dst`, then fsync both directories.
#[napi]
pub fn rename(src: String, dst: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::Rename {
        src: src.into(),
        dst: dst.into(),
    })
}

/// mkdir -p `path`, fsyncing each parent whose entry was created.
#[napi]
pub fn mkdir(path: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::Mkdir(path.into()))
}

/// fsync a file.
#[napi]
pub fn fsync_file(path: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::FsyncFile(path.into()))
}

/// fsync a directory.
#[napi]
pub fn fsync_dir(path: String) -> AsyncTask<DurableTask> {
    spawn(DurableOp::FsyncDir(path.into()))
}
