//! `freedBytesAt(dir, removed, others)`: the bytes removing the files `removed` would give
//! back while the files `others` stay (`core::freed`), all relative to the pool root.

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::freed;
use reflink_pool_core::Result;

use crate::outcome::{outcome, task, to_js};
use crate::pool_dir::{or_missing, PoolDir, Slot};

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeFreed {
    /// Bytes of data extents that no file outside the set maps.
    pub bytes: f64,
    /// Files of the set that exist.
    pub files: f64,
}

outcome!(FreedOutcome, NativeFreed);

pub struct FreedTask {
    slot: Slot,
    removed: Vec<String>,
    others: Vec<String>,
}

impl FreedTask {
    fn run(&self) -> Result<NativeFreed> {
        let dir = self.slot.get()?;
        // A name whose directory is gone (removed meanwhile) has nothing to count.
        let entries = |rels: &[String]| -> Result<Vec<_>> {
            Ok(rels
                .iter()
                .map(|rel| or_missing(dir.entry(rel.as_ref())))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect())
        };
        let f = freed::freed_bytes(&entries(&self.removed)?, &entries(&self.others)?)?;
        Ok(NativeFreed {
            bytes: to_js("bytes", f.bytes)?,
            files: to_js("files", f.files)?,
        })
    }
}

task!(FreedTask, FreedOutcome, "freedBytes");

/// What removing `removed` would free while `others` stay (paths relative to the pool root).
#[napi]
pub fn freed_bytes_at(
    dir: &PoolDir,
    removed: Vec<String>,
    others: Vec<String>,
) -> AsyncTask<FreedTask> {
    AsyncTask::new(FreedTask {
        slot: dir.slot(),
        removed,
        others,
    })
}
