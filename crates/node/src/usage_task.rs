//! `fileUsage`: apparent size, allocated bytes and the FIEMAP shared/exclusive split
//! (by path, and `fileUsageAt(dir, rel)` inside a pool).

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::usage;
use reflink_pool_core::Result;

use crate::outcome::{outcome, task, to_js};
use crate::pool_dir::{target, PoolDir, Target, TargetResult};

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeFileUsage {
    /// Apparent size (st_size).
    pub size: f64,
    /// Allocated bytes (st_blocks * 512).
    pub allocated: f64,
    /// Bytes in extents flagged shared (reflinked or deduplicated).
    pub shared: f64,
    /// Bytes in extents not shared.
    pub exclusive: f64,
    /// Number of extents.
    pub extents: f64,
}

outcome!(FileUsageOutcome, NativeFileUsage);

pub struct UsageTask {
    target: TargetResult,
}

impl UsageTask {
    fn run(&self) -> Result<NativeFileUsage> {
        let target = target(&self.target)?;
        let u = usage::file_usage_entry(&target.entry()?)?;
        Ok(NativeFileUsage {
            size: to_js("size", u.size)?,
            allocated: to_js("allocated", u.allocated)?,
            shared: to_js("shared", u.shared)?,
            exclusive: to_js("exclusive", u.exclusive)?,
            extents: to_js("extents", u.extents)?,
        })
    }
}

task!(UsageTask, FileUsageOutcome, "fileUsage");

#[napi]
pub fn file_usage(path: String) -> AsyncTask<UsageTask> {
    AsyncTask::new(UsageTask {
        target: Ok(Target::Path(path.into())),
    })
}

/// `fileUsage` of `rel` in the pool.
#[napi]
pub fn file_usage_at(dir: &PoolDir, rel: String) -> AsyncTask<UsageTask> {
    AsyncTask::new(UsageTask {
        target: dir.at(rel),
    })
}
