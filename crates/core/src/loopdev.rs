//! CONTRACT (implementation pending).
use std::path::Path;
use crate::error::Result;

/// LOOP_SET_CAPACITY on every loop device whose backing file resolves to the same
/// real path as `path`. Returns the device paths updated (`/dev/loopN`).
pub fn update_loop_dev_sizes(path: &Path) -> Result<Vec<String>> {
    let _ = path;
    todo!()
}
