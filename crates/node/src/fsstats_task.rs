//! `fsStats`: statvfs size/used/available of the filesystem holding a directory.

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::fsstats;
use reflink_pool_core::Result;

use crate::outcome::{outcome, task, to_js};
use crate::pool_dir::{target, Target, TargetResult};

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeFsStats {
    /// Total bytes of the filesystem.
    pub size: f64,
    /// Used bytes.
    pub used: f64,
    /// Bytes still available to unprivileged writers (f_bavail).
    pub available: f64,
}

outcome!(FsStatsOutcome, NativeFsStats);

pub struct FsStatsTask {
    dir: TargetResult,
}

impl FsStatsTask {
    fn run(&self) -> Result<NativeFsStats> {
        let s = fsstats::fs_stats_of(&target(&self.dir)?.dir()?)?;
        Ok(NativeFsStats {
            size: to_js("size", s.size)?,
            used: to_js("used", s.used)?,
            available: to_js("available", s.available)?,
        })
    }
}

task!(FsStatsTask, FsStatsOutcome, "fsStats");

#[napi]
pub fn fs_stats(dir: String) -> AsyncTask<FsStatsTask> {
    AsyncTask::new(FsStatsTask {
        dir: Ok(Target::Path(dir.into())),
    })
}
