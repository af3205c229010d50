//! `updateLoopDevSizes`: LOOP_SET_CAPACITY on every loop device backed by a file
//! (by path, and `updateLoopDevSizesAt(dir, rel)` inside a pool).

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::loopdev;
use reflink_pool_core::Result;

use crate::outcome::{outcome, task};
use crate::pool_dir::{target, PoolDir, Target, TargetResult};

// The loop devices updated (`/dev/loopN`).
outcome!(LoopDevOutcome, Vec<String>);

pub struct LoopDevTask {
    target: TargetResult,
}

impl LoopDevTask {
    fn run(&self) -> Result<Vec<String>> {
        match target(&self.target)? {
            Target::Path(p) => loopdev::update_loop_dev_sizes(p),
            at => loopdev::update_loop_dev_sizes_of(&at.entry()?),
        }
    }
}

task!(LoopDevTask, LoopDevOutcome, "updateLoopDevSizes");

#[napi]
pub fn update_loop_dev_sizes(path: String) -> AsyncTask<LoopDevTask> {
    AsyncTask::new(LoopDevTask {
        target: Ok(Target::Path(path.into())),
    })
}

/// `updateLoopDevSizes` of the image `rel` in the pool.
#[napi]
pub fn update_loop_dev_sizes_at(dir: &PoolDir, rel: String) -> AsyncTask<LoopDevTask> {
    AsyncTask::new(LoopDevTask {
        target: dir.at(rel),
    })
}
