//! reflink-pool-node: the napi-rs binding of `reflink-pool-core`.
//!
//! Files are named by path (the public primitives, files outside pools) or by
//! `(PoolDir, rel)` (`pool_dir.rs`): every file operation inside a pool is
//! resolved beneath the pool's directory handle, never by walking a path string.
//!
//! One `AsyncTask` per user-level operation (one file each, `*_task.rs`), run on
//! the libuv threadpool. Tasks never reject: they resolve with an outcome object
//! (`outcome.rs`) carrying either the value or the error as data, and a panic is
//! caught and turned into `ERR_INTERNAL`. `ts/binding.ts` unwraps outcomes and
//! throws Node-shaped errors. Numbers cross as JS numbers (exact integers below
//! 2^53, checked both ways). The exception to the threadpool is `VolumeLock`
//! (`lock.rs`): a lock wait lasts as long as another process holds the volume,
//! so it runs on a tokio blocking thread.

mod batch_task;
mod cancel;
mod copy_task;
mod data_runs_task;
mod durable_task;
mod entry_task;
mod export_reader;
mod file_size_task;
mod freed_task;
mod fsstats_task;
mod hash_image_task;
mod import_writer;
mod lock;
mod loopdev_task;
mod outcome;
mod panic_task;
mod pool_dir;
mod probe_task;
mod progress;
mod receive_stream;
mod send_header;
mod send_stream;
mod steps;
mod usage_task;
mod write_file_task;

use napi_derive::napi;

/// Version of the native binding (same as the workspace crates).
#[napi]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Every library error code the native side can produce (`codes::ALL` of the core),
/// for the parity test with `ERROR_CODES` in `ts/errors.ts`.
#[napi]
pub fn library_error_codes() -> Vec<String> {
    reflink_pool_core::error::codes::ALL
        .iter()
        .map(|c| c.to_string())
        .collect()
}

/// Every copy method name (`CopyMethod::ALL` of the core), for the parity test
/// with `COPY_METHODS` in `ts/copy.ts`.
#[napi]
pub fn copy_methods() -> Vec<String> {
    reflink_pool_core::CopyMethod::ALL
        .iter()
        .map(|m| m.as_str().to_string())
        .collect()
}
