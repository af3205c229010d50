//! `isReflinkSupported`: can `dstDir` hold reflinks of files in `srcDir`?

use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::probe;
use reflink_pool_core::Result;

use crate::outcome::{task, BoolOutcome};

pub struct ProbeTask {
    dst_dir: PathBuf,
    src_dir: Option<PathBuf>,
}

impl ProbeTask {
    fn run(&self) -> Result<bool> {
        probe::is_reflink_supported(&self.dst_dir, self.src_dir.as_deref())
    }
}

task!(ProbeTask, BoolOutcome, "isReflinkSupported");

#[napi]
pub fn is_reflink_supported(dst_dir: String, src_dir: Option<String>) -> AsyncTask<ProbeTask> {
    AsyncTask::new(ProbeTask {
        dst_dir: dst_dir.into(),
        src_dir: src_dir.map(PathBuf::from),
    })
}
