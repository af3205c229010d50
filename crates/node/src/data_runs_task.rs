//! `dataRuns`: where a sparse file holds data (SEEK_DATA/SEEK_HOLE), so a
//! stream export can send only those runs and let the reader recreate holes.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::extents;
use reflink_pool_core::{Error, Result};

use crate::outcome::{outcome, task, to_js};

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
    path: PathBuf,
}

impl DataRunsTask {
    fn run(&self) -> Result<NativeDataRuns> {
        let file = File::open(&self.path).map_err(|e| Error::io(e, "open", &self.path))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(e, "fstat", &self.path))?
            .len();
        let runs = extents::data_runs(file.as_fd(), size).map_err(|e| e.with_path(&self.path))?;
        Ok(NativeDataRuns {
            size: to_js("size", size)?,
            runs: runs
                .iter()
                .map(|r| {
                    Ok(NativeDataRun {
                        offset: to_js("offset", r.offset)?,
                        length: to_js("length", r.len)?,
                    })
                })
                .collect::<Result<_>>()?,
        })
    }
}

task!(DataRunsTask, DataRunsOutcome, "dataRuns");

#[napi]
pub fn data_runs(path: String) -> AsyncTask<DataRunsTask> {
    AsyncTask::new(DataRunsTask { path: path.into() })
}
