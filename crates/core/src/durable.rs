//! CONTRACT (implementation pending). Each op is followed by fsync of the directory
//! (both directories for a rename), so the namespace change survives power loss.
use std::path::Path;
use crate::error::Result;

/// link(2) `src` to `dst`, then fsync `dst`'s directory.
pub fn hardlink(src: &Path, dst: &Path) -> Result<()> { let _ = (src, dst); todo!() }
/// rename(2) `src` over `dst`, then fsync both directories.
pub fn rename(src: &Path, dst: &Path) -> Result<()> { let _ = (src, dst); todo!() }
/// unlink(2) `path` (ENOENT ignored), then fsync its directory. Returns whether it existed.
pub fn remove(path: &Path) -> Result<bool> { let _ = path; todo!() }
/// mkdir -p `path`, fsyncing each parent whose entry was created.
pub fn mkdir(path: &Path) -> Result<()> { let _ = path; todo!() }
/// Write `data` to `path` atomically and durably (temp + fsync + rename + dir fsync), mode `mode`.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> { let _ = (path, data, mode); todo!() }
/// fsync a file (opened read-only).
pub fn fsync_file(path: &Path) -> Result<()> { let _ = path; todo!() }
/// fsync a directory.
pub fn fsync_dir(path: &Path) -> Result<()> { let _ = path; todo!() }
