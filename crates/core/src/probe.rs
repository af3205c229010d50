//! CONTRACT (implementation pending).
use std::path::Path;
use crate::error::Result;

/// Whether a file in `dst_dir` can be a reflink of a file in `src_dir` (default: `dst_dir`),
/// probed with unnamed temp files (O_TMPFILE) holding a few bytes of data.
pub fn is_reflink_supported(dst_dir: &Path, src_dir: Option<&Path>) -> Result<bool> {
    let _ = (dst_dir, src_dir);
    todo!()
}
