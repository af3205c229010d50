//! Durable file copy. CONTRACT (implementation pending): see lib.rs and SPEC §2.

use std::path::Path;

use crate::control::Control;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReflinkMode {
    /// Clone when the filesystem can, else sparse copy.
    #[default]
    Auto,
    /// Clone or fail with `ERR_REFLINK_UNSUPPORTED`; never copy data.
    Always,
    /// Never clone: always the sparse copy path.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    Reflink,
    CopyRange,
    ReadWrite,
    Empty,
}

impl CopyMethod {
    /// The name used across the JS boundary: `reflink`, `copy-range`, `read-write`, `empty`.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyMethod::Reflink => "reflink",
            CopyMethod::CopyRange => "copy-range",
            CopyMethod::ReadWrite => "read-write",
            CopyMethod::Empty => "empty",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    pub reflink: ReflinkMode,
    /// Truncate or zero-extend the result to this size; `Some(0)` creates an empty file without cloning.
    pub size: Option<u64>,
    /// Give the result the source's mtime (ns precision).
    pub copy_mtime: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOutcome {
    pub method: CopyMethod,
    /// Bytes of data moved (0 for a reflink or an empty result).
    pub bytes: u64,
}

/// Make `dst` a copy of `src`, atomically and durably (temp `<dst>~<random>` mode 0600,
/// fsync, rename, fsync dir). Creates `dst`'s parent directory if missing.
pub fn copy_file(src: &Path, dst: &Path, opts: &CopyOptions, ctl: &Control) -> Result<CopyOutcome> {
    let _ = (src, dst, opts, ctl);
    todo!("copy_file")
}
