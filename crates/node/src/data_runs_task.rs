//! `dataRuns`: where a sparse file holds data (SEEK_DATA/SEEK_HOLE), so a
//! stream export can send only those runs and let the reader recreate holes.

use std::os::fd::AsFd;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::extents;
use reflink_pool_core::{Error, Result};

use crate::outcome::{outcome, task, to_js};
use crate::pool_dir::{PoolDir, Target, TargetResult};

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeDataRun {
    pub offset: f64,
    pub length: f64,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeDataRuns {
    /// Apparent size of the file when it was mapped.
    pub size: f64,
    /// Data runs in ascending order; everything else reads as zeros.
    pub runs: Vec<NativeDataRun>,
}

outcome!(DataRunsOutcome, NativeDataRuns);

pub struct DataRunsTask {
    target: TargetResult,
}

impl DataRunsTask {
    fn run(&self) -> Result<NativeDataRuns> {
        let entry = self.target.as_ref().map_err(Clone::clone)?.entry()?;
        let file = entry.open_read()?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(e, "fstat").with_path(entry.shown()))?
            .len();
        let runs = extents::data_runs(file.as_fd(), size)
            .map(|r| {
                let r = r.map_err(|e| e.with_path(entry.shown()))?;
                Ok(NativeDataRun {
                    offset: to_js("offset", r.offset)?,
                    length: to_js("length", r.len)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(NativeDataRuns {
            size: to_js("size", size)?,
            runs,
        })
    }
}

task!(DataRunsTask, DataRunsOutcome, "dataRuns");

#[napi]
pub fn data_runs(path: String) -> AsyncTask<DataRunsTask> {
    AsyncTask::new(DataRunsTask {
        target: Ok(Target::Path(path.into())),
    })
}

/// `dataRuns` of `rel` in the pool.
#[napi]
pub fn data_runs_at(dir: &PoolDir, rel: String) -> AsyncTask<DataRunsTask> {
    AsyncTask::new(DataRunsTask {
        target: dir.at(rel),
    })
}
