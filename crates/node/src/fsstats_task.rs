//! `fsStats` / `fsStatsAt`: statvfs size/used/available of the filesystem holding a
//! directory, by path or beneath a pool's directory handle (`''` for the pool's own).

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::fsstats;
use reflink_pool_core::Result;

use crate::outcome::{outcome, task, to_js};
use crate::pool_dir::{target, PoolDir, Target, TargetResult};

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
        let s = match target(&self.dir)? {
            // The pool's own handle: no path resolved again (ENOENT once it was removed).
            Target::At(slot, rel) if rel.as_os_str().is_empty() => {
                fsstats::fs_stats_of_pool(&*slot.get()?)?
            }
            t => fsstats::fs_stats_of(&t.dir()?)?,
        };
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

/// statvfs of the filesystem holding `rel` of the pool (`''`: the pool directory itself,
/// through its handle; ENOENT once that directory was removed).
#[napi]
pub fn fs_stats_at(dir: &PoolDir, rel: String) -> AsyncTask<FsStatsTask> {
    AsyncTask::new(FsStatsTask { dir: dir.at(rel) })
}
