//! Make loop devices see a resized backing file (LOOP_SET_CAPACITY).
//!
//! Why: a running VM's disk is a loop device over its dirty image; after the image is
//! resized the device keeps its old size until told. Strategy (as Qubes'
//! `_update_loop_dev_size`): resolve `path` to its real path, scan
//! `/sys/block/loop*/loop/backing_file` (the kernel's d_path of each backing file, with
//! " (deleted)" appended once unlinked), and issue LOOP_SET_CAPACITY on each
//! `/dev/loopN` whose backing file is that path. Cost: one small sysfs read per loop
//! device. Inside a pool (`update_loop_dev_sizes_of`) the image is opened through its
//! directory handle and its real path read from `/proc/self/fd`. No cancellation:
//! bounded by the number of loop devices.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd};

use std::path::{Path, PathBuf};

use crate::dir::Entry;
use crate::error::{Error, Result};
use crate::sys;

const SYS_BLOCK: &str = "/sys/block";

/// LOOP_SET_CAPACITY on every loop device whose backing file resolves to the same
/// real path as `path`. Returns the device paths updated (`/dev/loopN`). `path` is
/// resolved leniently, as Qubes' `os.path.realpath`: a path that does not exist (yet,
/// or any more) is no error, and only a loop device attached under that name matches.
pub fn update_loop_dev_sizes(path: &Path) -> Result<Vec<String>> {
    let real = lenient_realpath(path).map_err(|e| Error::io(e, "realpath").with_path(path))?;
    update_backed_by(&real)
}

/// `realpath` of the longest existing leading part of `path`, with the rest appended
/// as it is (Python's non-strict `os.path.realpath`).
fn lenient_realpath(path: &Path) -> std::io::Result<PathBuf> {
    match std::fs::canonicalize(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let absolute = std::path::absolute(path)?;
            match (absolute.parent(), absolute.file_name()) {
                (Some(parent), Some(name)) => Ok(lenient_realpath(parent)?.join(name)),
                // `/` or a path ending in `..` that does not exist: nothing left to resolve.
                _ => Ok(absolute),
            }
        }
        r => r,
    }
}

/// `update_loop_dev_sizes` of a file named through a directory handle: its real path is
/// the one the kernel reports for the opened file (`/proc/self/fd`), no path is walked.
pub fn update_loop_dev_sizes_of(entry: &Entry) -> Result<Vec<String>> {
    let f = entry.open_read()?;
    let link = format!("/proc/self/fd/{}", f.as_raw_fd());
    let real =
        std::fs::read_link(&link).map_err(|e| Error::io(e, "readlink").with_path(entry.shown()))?;
    update_backed_by(&real)
}

fn update_backed_by(real: &Path) -> Result<Vec<String>> {
    let mut updated = Vec::new();
    for dev in loop_devices_backed_by(real)? {
        let dev_path = format!("/dev/{dev}");
        let f = File::open(&dev_path).map_err(|e| Error::io(e, "open").with_path(&dev_path))?;
        sys::loop_set_capacity(f.as_fd())
            .map_err(|e| Error::os(e, "ioctl(LOOP_SET_CAPACITY)").with_path(&dev_path))?;
        updated.push(dev_path);
    }
    Ok(updated)
}

/// Names (`loopN`) of the loop devices whose backing file is `real` (a canonical path).
fn loop_devices_backed_by(real: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(SYS_BLOCK) {
        Ok(entries) => entries,
        // No sysfs (containers): no loop device can be found, so none is updated.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(e, "opendir").with_path(SYS_BLOCK)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(e, "readdir").with_path(SYS_BLOCK))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let backing = entry.path().join("loop/backing_file");
        let text = match std::fs::read(&backing) {
            Ok(t) => t,
            // Not attached (no `loop/` dir) or detached meanwhile.
            Err(e)
                if matches!(e.kind(), ErrorKind::NotFound)
                    || e.raw_os_error() == Some(libc::ENXIO) =>
            {
                continue
            }
            Err(e) => return Err(Error::io(e, "read").with_path(&backing)),
        };
        if backing_path(&text).is_some_and(|b| same_file(&b, real)) {
            found.push(name);
        }
    }
    found.sort_by_key(|n| (n.len(), n.clone()));
    Ok(found)
}

/// The backing file path from sysfs text: trailing newline and " (deleted)" removed.
fn backing_path(text: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut t = text.strip_suffix(b"\n").unwrap_or(text);
    t = t.strip_suffix(b" (deleted)").unwrap_or(t);
    (!t.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(t)))
}

/// Whether the sysfs path names `real`: literally, or once resolved (a path under a
/// symlinked directory as the kernel saw it at attach time).
fn same_file(backing: &Path, real: &Path) -> bool {
    backing == real || std::fs::canonicalize(backing).is_ok_and(|b| b == real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_a_missing_path_leniently() {
        let dir = std::env::temp_dir().join(format!("loopdev-lenient-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let real = std::fs::canonicalize(&dir).unwrap();
        let missing = dir.join("no/such/file.img");
        assert_eq!(
            lenient_realpath(&missing).unwrap(),
            real.join("no/such/file.img")
        );
        assert_eq!(
            update_loop_dev_sizes(&missing).unwrap(),
            Vec::<String>::new()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_sysfs_backing_file() {
        assert_eq!(backing_path(b"/a/b.img\n"), Some(PathBuf::from("/a/b.img")));
        assert_eq!(
            backing_path(b"/a/b.img (deleted)\n"),
            Some(PathBuf::from("/a/b.img"))
        );
        assert_eq!(backing_path(b"\n"), None);
    }
}
