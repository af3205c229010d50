//! `dataRuns`: where a sparse file holds data (SEEK_DATA/SEEK_HOLE), in bounded batches:
//! at most `limit` runs from an offset, and where the next batch starts, so no caller
//! holds the whole map of a fragmented file at once.

use std::os::fd::AsFd;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::extents;
use reflink_pool_core::{Error, Result};

use crate::outcome::{outcome, task, to_js, to_u64};
use crate::pool_dir::{target, PoolDir, Target, TargetResult};

/// Runs per batch when the caller gives no limit.
const DEFAULT_LIMIT: u64 = 4096;

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
    /// Data runs in ascending order, from `start` on; everything else reads as zeros.
    pub runs: Vec<NativeDataRun>,
    /// Where the next batch starts, or absent when this batch reached the end.
    pub next: Option<f64>,
}

outcome!(DataRunsOutcome, NativeDataRuns);

pub struct DataRunsTask {
    target: TargetResult,
    start: Option<f64>,
    limit: Option<f64>,
}

impl DataRunsTask {
    fn run(&self) -> Result<NativeDataRuns> {
        let start = self
            .start
            .map(|s| to_u64("start", s))
            .transpose()?
            .unwrap_or(0);
        let limit = self
            .limit
            .map(|l| to_u64("limit", l))
            .transpose()?
            .unwrap_or(DEFAULT_LIMIT)
            .max(1);
        let entry = target(&self.target)?.entry()?;
        let file = entry.open_read()?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(e, "fstat").with_path(entry.shown()))?
            .len();
        let mut runs = Vec::new();
        let mut next = None;
        for run in extents::data_runs_from(file.as_fd(), start, size) {
            let run = run.map_err(|e| e.with_path(entry.shown()))?;
            if runs.len() as u64 == limit {
                next = Some(to_js("next", run.offset)?);
                break;
            }
            runs.push(NativeDataRun {
                offset: to_js("offset", run.offset)?,
                length: to_js("length", run.len)?,
            });
        }
        Ok(NativeDataRuns {
            size: to_js("size", size)?,
            runs,
            next,
        })
    }
}

task!(DataRunsTask, DataRunsOutcome, "dataRuns");

/// At most `limit` (default 4096) data runs of `path` from offset `start` (default 0).
#[napi]
pub fn data_runs(path: String, start: Option<f64>, limit: Option<f64>) -> AsyncTask<DataRunsTask> {
    AsyncTask::new(DataRunsTask {
        target: Ok(Target::Path(path.into())),
        start,
        limit,
    })
}

/// `dataRuns` of `rel` in the pool.
#[napi]
pub fn data_runs_at(
    dir: &PoolDir,
    rel: String,
    start: Option<f64>,
    limit: Option<f64>,
) -> AsyncTask<DataRunsTask> {
    AsyncTask::new(DataRunsTask {
        target: dir.at(rel),
        start,
        limit,
    })
}
