//! `writeFile`: small files (configs, records) written atomically and durably
//! (by path, and `writeFileAt(dir, rel, ...)` inside a pool).

use napi::bindgen_prelude::{AsyncTask, Buffer, Null};
use napi_derive::napi;
use reflink_pool_core::tempname;
use reflink_pool_core::Result;

use crate::outcome::{task, VoidOutcome};
use crate::pool_dir::{target, PoolDir, Target, TargetResult};

pub struct WriteFileTask {
    target: TargetResult,
    /// Held by reference: the caller must not mutate it until the promise settles.
    data: Buffer,
    mode: u32,
}

impl WriteFileTask {
    fn run(&self) -> Result<Null> {
        let entry = target(&self.target)?.entry_creating()?;
        tempname::write_file(&entry, &self.data, self.mode)?;
        Ok(Null)
    }
}

task!(WriteFileTask, VoidOutcome, "writeFile");

/// Temp file beside `path` + fsync + rename + dir fsync, with permission bits `mode`.
#[napi]
pub fn write_file(path: String, data: Buffer, mode: u32) -> AsyncTask<WriteFileTask> {
    AsyncTask::new(WriteFileTask {
        target: Ok(Target::Path(path.into())),
        data,
        mode,
    })
}

/// `writeFile` of `rel` in the pool (parents created, mode 0700).
#[napi]
pub fn write_file_at(
    dir: &PoolDir,
    rel: String,
    data: Buffer,
    mode: u32,
) -> AsyncTask<WriteFileTask> {
    AsyncTask::new(WriteFileTask {
        target: dir.at(rel),
        data,
        mode,
    })
}
