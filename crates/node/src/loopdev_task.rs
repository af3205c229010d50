//! `updateLoopDevSizes`: LOOP_SET_CAPACITY on every loop device backed by a file.

use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::loopdev;
use reflink_pool_core::Result;

use crate::outcome::{outcome, task};

// The loop devices updated (`/dev/loopN`).
outcome!(LoopDevOutcome, Vec<String>);

pub struct LoopDevTask {
    path: PathBuf,
}

impl LoopDevTask {
    fn run(&self) -> Result<Vec<String>> {
        loopdev::update_loop_dev_sizes(&self.path)
    }
}

task!(LoopDevTask, LoopDevOutcome, "updateLoopDevSizes");

#[napi]
pub fn update_loop_dev_sizes(path: String) -> AsyncTask<LoopDevTask> {
    AsyncTask::new(LoopDevTask { path: path.into() })
}
