//! Looking at a pool's files without following anything: `statAt` (lstat),
//! `readDirAt` (names and kinds) and `readFileAt` (a small regular file, bounded),
//! each resolved beneath the pool root (`core::dir`). A missing entry (or a missing
//! parent directory) resolves `null`; a symlink on the way is `ERR_UNSAFE_PATH`.

use std::io::Read;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::dir::Kind;
use reflink_pool_core::error::{codes, Error, Result};

use crate::outcome::{outcome, task, to_js};
use crate::pool_dir::{entry_or_missing as entry, or_missing, target, PoolDir, TargetResult};

/// What `statAt` reports (from lstat: a symlink is reported as one, never followed).
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeEntryStat {
    #[napi(ts_type = "'file' | 'directory' | 'symlink' | 'other'")]
    pub kind: String,
    pub size: f64,
    /// Modification time in ms since the epoch, with the sub-ms part (as Node's `mtimeMs`).
    pub mtime_ms: f64,
    /// The same in ns, exactly, as a decimal string (for change detection: `BigInt(mtimeNs)`).
    pub mtime_ns: String,
    /// Hard links.
    pub nlink: f64,
    /// Device and inode, for identity comparisons only (exact below 2^53).
    pub dev: f64,
    pub ino: f64,
}

/// A directory's entries as two parallel lists (one JS string per name and one string
/// for all kinds: 10 000 entries cross as 10 001 values, not 10 000 objects).
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeDirEntries {
    pub names: Vec<String>,
    /// One letter per name: `f` file, `d` directory, `l` symlink, `o` other.
    pub kinds: String,
}

outcome!(EntryStatOutcome, Option<NativeEntryStat>);
outcome!(DirEntriesOutcome, Option<NativeDirEntries>);
outcome!(TextOutcome, Option<String>);

pub struct StatTask {
    target: TargetResult,
}

impl StatTask {
    fn run(&self) -> Result<Option<NativeEntryStat>> {
        let Some(entry) = entry(&self.target)? else {
            return Ok(None);
        };
        let Some(st) = entry.stat()? else {
            return Ok(None);
        };
        Ok(Some(NativeEntryStat {
            kind: Kind::of(&st).as_str().to_string(),
            size: to_js("size", u64::try_from(st.st_size).unwrap_or(0))?,
            mtime_ms: st.st_mtime as f64 * 1000.0 + st.st_mtime_nsec as f64 / 1e6,
            mtime_ns: (i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec))
                .to_string(),
            nlink: st.st_nlink as f64,
            dev: st.st_dev as f64,
            ino: st.st_ino as f64,
        }))
    }
}

task!(StatTask, EntryStatOutcome, "stat");

/// lstat of `rel` in the pool; `null` when it (or a parent) is missing.
#[napi]
pub fn stat_at(dir: &PoolDir, rel: String) -> AsyncTask<StatTask> {
    AsyncTask::new(StatTask {
        target: dir.at(rel),
    })
}

pub struct ReadDirTask {
    target: TargetResult,
}

/// The entries of one directory with their kinds; `None` when it is missing.
fn list_dir(target_result: &TargetResult) -> Result<Option<NativeDirEntries>> {
    let t = target(target_result)?;
    let Some(dir) = or_missing(t.dir())? else {
        return Ok(None);
    };
    let list = dir.list()?;
    let mut out = NativeDirEntries {
        names: Vec::with_capacity(list.len()),
        kinds: String::with_capacity(list.len()),
    };
    for (name, kind) in list {
        out.names.push(name.to_string_lossy().into_owned());
        out.kinds.push(match kind {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::Other => 'o',
        });
    }
    Ok(Some(out))
}

impl ReadDirTask {
    fn run(&self) -> Result<Option<NativeDirEntries>> {
        list_dir(&self.target)
    }
}

task!(ReadDirTask, DirEntriesOutcome, "readDir");

/// The entries of the directory `rel` of the pool (`''`: the root) with their kinds
/// (never followed), sorted by name as `fs.readdir` returns them; `null` when it is missing.
#[napi]
pub fn read_dir_at(dir: &PoolDir, rel: String) -> AsyncTask<ReadDirTask> {
    AsyncTask::new(ReadDirTask {
        target: dir.at(rel),
    })
}

outcome!(DirEntriesListOutcome, Vec<Option<NativeDirEntries>>);

pub struct ReadDirsTask {
    targets: Vec<TargetResult>,
}

impl ReadDirsTask {
    fn run(&self) -> Result<Vec<Option<NativeDirEntries>>> {
        self.targets.iter().map(list_dir).collect()
    }
}

task!(ReadDirsTask, DirEntriesListOutcome, "readDirs");

/// `read_dir_at` of many directories in one task (a batch lists the VM directories
/// of a thousand volumes in one threadpool round trip, not a thousand).
#[napi]
pub fn read_dirs_at(dir: &PoolDir, rels: Vec<String>) -> AsyncTask<ReadDirsTask> {
    AsyncTask::new(ReadDirsTask {
        targets: rels.into_iter().map(|rel| dir.at(rel)).collect(),
    })
}

pub struct ReadFileTask {
    target: TargetResult,
    max_bytes: u32,
}

impl ReadFileTask {
    fn run(&self) -> Result<Option<String>> {
        let Some(entry) = entry(&self.target)? else {
            return Ok(None);
        };
        let Some(file) = or_missing(entry.open_read())? else {
            return Ok(None);
        };
        let mut data = Vec::new();
        let limit = u64::from(self.max_bytes);
        file.take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::io(e, "read").with_path(entry.shown()))?;
        if data.len() as u64 > limit {
            return Err(Error::lib(
                codes::ERR_INVALID_ARG_VALUE,
                "read",
                format!("larger than {limit} bytes; not a file the pool wrote"),
            )
            .with_path(entry.shown()));
        }
        Ok(Some(String::from_utf8_lossy(&data).into_owned()))
    }
}

task!(ReadFileTask, TextOutcome, "readFile");

/// The text (UTF-8) of the small regular file `rel` of the pool, at most `maxBytes`
/// (a larger file is `ERR_INVALID_ARG_VALUE`); `null` when missing. Never follows a
/// symlink, never opens a FIFO or device.
#[napi]
pub fn read_file_at(dir: &PoolDir, rel: String, max_bytes: u32) -> AsyncTask<ReadFileTask> {
    AsyncTask::new(ReadFileTask {
        target: dir.at(rel),
        max_bytes,
    })
}
