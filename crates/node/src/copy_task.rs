//! `copyFile`: one task = the whole durable copy (clone or sparse copy, fsync,
//! rename, dir fsync) on the libuv threadpool, cancellable between chunks.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use reflink_pool_core::copy::{self, CopyOptions, ReflinkMode, SparseMode};
use reflink_pool_core::error::{codes, Error, Result};

use crate::cancel::CancelToken;
use crate::outcome::{outcome, task, to_js, to_u64};
use crate::pool_dir::{PoolDir, Target, TargetResult};
use crate::progress::{with_control, ProgressFn, Throttled};

#[napi(object)]
pub struct NativeCopyOptions {
    #[napi(ts_type = "'auto' | 'always' | 'never'")]
    pub reflink: String,
    /// Truncate or zero-extend the result; 0 creates an empty file without cloning.
    pub size: Option<f64>,
    pub copy_mtime: bool,
    /// 'always': all-zero blocks of the data become holes too (never a clone).
    #[napi(ts_type = "'auto' | 'always'")]
    pub sparse: Option<String>,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeCopyResult {
    /// One of `CopyMethod::ALL` (the literal below is checked against it by
    /// `__test__/error-codes-parity.test.ts`).
    #[napi(ts_type = "'reflink' | 'copy-range' | 'read-write' | 'empty'")]
    pub method: String,
    /// Bytes of data moved (0 for a reflink or an empty result).
    pub bytes: f64,
    /// The core's last progress report, held back from the callback so that TS
    /// delivers it before resolving (absent without a callback or a report).
    pub last_progress: Option<NativeProgress>,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeProgress {
    pub done: f64,
    pub total: f64,
}

outcome!(CopyOutcome, NativeCopyResult);

/// The core's last progress report, for a task's result (see `NativeCopyResult::last_progress`).
pub fn last_progress(progress: Option<&Throttled>) -> Result<Option<NativeProgress>> {
    match progress.and_then(Throttled::last) {
        Some((done, total)) => Ok(Some(NativeProgress {
            done: to_js("done", done)?,
            total: to_js("total", total)?,
        })),
        None => Ok(None),
    }
}

pub struct CopyTask {
    src: TargetResult,
    dst: TargetResult,
    options: NativeCopyOptions,
    cancel: Option<Arc<AtomicBool>>,
    progress: Option<Throttled>,
}

pub fn reflink_mode(s: &str) -> Result<ReflinkMode> {
    match s {
        "auto" => Ok(ReflinkMode::Auto),
        "always" => Ok(ReflinkMode::Always),
        "never" => Ok(ReflinkMode::Never),
        other => Err(Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "validate",
            format!("reflink must be 'auto', 'always' or 'never', got '{other}'"),
        )),
    }
}

fn sparse_mode(s: Option<&str>) -> Result<SparseMode> {
    match s {
        None | Some("auto") => Ok(SparseMode::Auto),
        Some("always") => Ok(SparseMode::Always),
        Some(other) => Err(Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "validate",
            format!("sparse must be 'auto' or 'always', got '{other}'"),
        )),
    }
}

impl CopyTask {
    fn run(&self) -> Result<NativeCopyResult> {
        let opts = CopyOptions {
            reflink: reflink_mode(&self.options.reflink)?,
            size: self.options.size.map(|s| to_u64("size", s)).transpose()?,
            copy_mtime: self.options.copy_mtime,
            sparse: sparse_mode(self.options.sparse.as_deref())?,
        };
        let out = with_control(
            self.cancel.as_deref(),
            self.progress.as_ref(),
            |ctl| match (self.src.as_ref(), self.dst.as_ref()) {
                (Ok(Target::Path(src)), Ok(Target::Path(dst))) => {
                    copy::copy_file(src, dst, &opts, ctl)
                }
                (Ok(src), Ok(dst)) => {
                    copy::copy_entry(&src.entry()?, &dst.entry_creating()?, &opts, ctl)
                }
                (Err(e), _) | (_, Err(e)) => Err(e.clone()),
            },
        )?;
        let last_progress = last_progress(self.progress.as_ref())?;
        Ok(NativeCopyResult {
            method: out.method.as_str().to_string(),
            bytes: to_js("bytes", out.bytes)?,
            last_progress,
        })
    }
}

task!(CopyTask, CopyOutcome, "copyFile");

fn spawn(
    src: TargetResult,
    dst: TargetResult,
    options: NativeCopyOptions,
    cancel: Option<&CancelToken>,
    on_progress: Option<ProgressFn>,
) -> AsyncTask<CopyTask> {
    AsyncTask::new(CopyTask {
        src,
        dst,
        options,
        cancel: cancel.map(CancelToken::flag),
        progress: on_progress.map(Throttled::new),
    })
}

/// Copy `src` to `dst` atomically and durably. Never rejects: errors come back as data.
#[napi]
pub fn copy_file(
    src: String,
    dst: String,
    options: NativeCopyOptions,
    cancel: Option<&CancelToken>,
    #[napi(ts_arg_type = "(doneBytes: number, totalBytes: number) => void")] on_progress: Option<
        ProgressFn,
    >,
) -> AsyncTask<CopyTask> {
    let (src, dst) = (Target::Path(src.into()), Target::Path(dst.into()));
    spawn(Ok(src), Ok(dst), options, cancel, on_progress)
}

/// `copyFile` of `src` (relative to the pool root `src_dir`) to `dst` (relative to
/// `dst_dir`, usually the same pool): no symlink followed, the destination's parents
/// created with mode 0700.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn copy_file_at(
    src_dir: &PoolDir,
    src: String,
    dst_dir: &PoolDir,
    dst: String,
    options: NativeCopyOptions,
    cancel: Option<&CancelToken>,
    #[napi(ts_arg_type = "(doneBytes: number, totalBytes: number) => void")] on_progress: Option<
        ProgressFn,
    >,
) -> AsyncTask<CopyTask> {
    spawn(
        src_dir.at(src),
        dst_dir.at(dst),
        options,
        cancel,
        on_progress,
    )
}

/// `copyFile` of the file `src` outside any pool (an ordinary path: a file to import) to
/// `dst` relative to the pool root `dst_dir`.
#[napi]
pub fn copy_file_from_path(
    src: String,
    dst_dir: &PoolDir,
    dst: String,
    options: NativeCopyOptions,
    cancel: Option<&CancelToken>,
    #[napi(ts_arg_type = "(doneBytes: number, totalBytes: number) => void")] on_progress: Option<
        ProgressFn,
    >,
) -> AsyncTask<CopyTask> {
    spawn(
        Ok(Target::Path(src.into())),
        dst_dir.at(dst),
        options,
        cancel,
        on_progress,
    )
}

/// `copyFile` of `src` relative to the pool root `src_dir` to the file `dst` outside any
/// pool (an ordinary path: an export).
#[napi]
pub fn copy_file_to_path(
    src_dir: &PoolDir,
    src: String,
    dst: String,
    options: NativeCopyOptions,
    cancel: Option<&CancelToken>,
    #[napi(ts_arg_type = "(doneBytes: number, totalBytes: number) => void")] on_progress: Option<
        ProgressFn,
    >,
) -> AsyncTask<CopyTask> {
    spawn(
        src_dir.at(src),
        Ok(Target::Path(dst.into())),
        options,
        cancel,
        on_progress,
    )
}
