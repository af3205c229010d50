//! `hashImage`: the image hash (docs/design.md §8) of a committed image of the pool,
//! reading only its data runs; one task, stopped between chunks by a `CancelToken`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::error::{Error, Result};
use reflink_pool_core::imagehash::{image_hash, to_hex};
use reflink_pool_core::Control;

use crate::cancel::CancelToken;
use crate::outcome::{outcome, task};
use crate::pool_dir::{PoolDir, TargetResult};
use crate::steps::open_read;

outcome!(HashOutcome, String);

pub struct HashImageTask {
    target: TargetResult,
    cancel: Option<Arc<AtomicBool>>,
}

impl HashImageTask {
    fn run(&self) -> Result<String> {
        let (file, path) = open_read(&self.target)?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(e, "fstat").with_path(&path))?
            .len();
        let ctl = Control {
            cancel: self.cancel.as_deref(),
            progress: None,
        };
        let h = image_hash(&file, size, &ctl).map_err(|e| e.with_path(&path))?;
        Ok(to_hex(h))
    }
}

task!(HashImageTask, HashOutcome, "hashImage");

/// The image hash of the image `rel` of the pool (docs/design.md §8), reading only its
/// data runs.
#[napi]
pub fn hash_image(
    dir: &PoolDir,
    rel: String,
    cancel: Option<&CancelToken>,
) -> AsyncTask<HashImageTask> {
    AsyncTask::new(HashImageTask {
        target: dir.at(rel),
        cancel: cancel.map(CancelToken::flag),
    })
}
