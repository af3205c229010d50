//! `isReflinkSupported`: can `dstDir` hold reflinks of files in `srcDir`?
//! (by path, and `isReflinkSupportedAt(dir, rel)` for a directory of a pool).

use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::probe;
use reflink_pool_core::Result;

use crate::outcome::{task, BoolOutcome};
use crate::pool_dir::{target, PoolDir, Target, TargetResult};

pub struct ProbeTask {
    dst_dir: TargetResult,
    src_dir: Option<PathBuf>,
}

impl ProbeTask {
    fn run(&self) -> Result<bool> {
        let dst = target(&self.dst_dir)?.dir()?;
        match &self.src_dir {
            Some(src) => probe::is_reflink_supported_in(&dst, &Target::Path(src.clone()).dir()?),
            None => probe::is_reflink_supported_in(&dst, &dst),
        }
    }
}

task!(ProbeTask, BoolOutcome, "isReflinkSupported");

#[napi]
pub fn is_reflink_supported(dst_dir: String, src_dir: Option<String>) -> AsyncTask<ProbeTask> {
    AsyncTask::new(ProbeTask {
        dst_dir: Ok(Target::Path(dst_dir.into())),
        src_dir: src_dir.map(PathBuf::from),
    })
}

/// `isReflinkSupported` within the directory `rel` of the pool (`''`: the root).
#[napi]
pub fn is_reflink_supported_at(dir: &PoolDir, rel: String) -> AsyncTask<ProbeTask> {
    AsyncTask::new(ProbeTask {
        dst_dir: dir.at(rel),
        src_dir: None,
    })
}
