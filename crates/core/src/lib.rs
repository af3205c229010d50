//! reflink-pool-core: the filesystem primitives behind reflink-pool.
//!
//! Pure Rust, no napi. Every function here is blocking and meant to run on a
//! worker thread; the napi binding (`crates/node`) wraps each user-level step in
//! one `AsyncTask`. Errors keep the OS errno and the syscall/path context all the
//! way up (see `error`), so the JS side can build Node-shaped errors.
//!
//! Module map (one module per operation):
//! - `dir`: directory handles; every file inside a pool is reached through one
//!   (`openat2` beneath the pool root, no symlinks; StrictModes; regular files only).
//! - `copy`: durable copy (temp + fsync + rename + dir fsync) with the strategy
//!   order FICLONE -> SEEK_DATA/SEEK_HOLE + copy_file_range -> pread/pwrite.
//! - `sparse`: create a file with no data blocks, atomically and durably.
//! - `resize`: truncate/extend in place and fsync.
//! - `loopdev`: LOOP_SET_CAPACITY for every loop device backed by a file.
//! - `probe`: can this directory reflink (from that one)?
//! - `usage`: apparent/allocated size and the FIEMAP shared/exclusive split.
//! - `durable`: hardlink/rename/remove/rmdir, each followed by directory fsync.
//! - `tempname`: temp files beside their target, committed by rename (and `write_file`).
//! - `freed`: what removing a set of files would give back (extents no other file maps).
//! - `fsstats`: statvfs of a directory.
//! - `extents`: the data runs of a sparse file (SEEK_DATA/SEEK_HOLE).
//! - `sparse_reader`: a sparse file read as a stream, holes reported, not read (stream export).
//! - `zeroskip`: writes that leave all-zero blocks as holes (stream import, `sparse: always`).
//! - `diff`: the changed ranges of an image against a base, from both extent maps.
//! - `imagehash`: the updatable whole-image checksum of the send stream.
//! - `send_format`: the send stream's wire format (header, record heads, seals, codec).
//! - `send` / `receive`: the sender and the receiver of the send stream.
//! - `control`: cooperative cancellation and progress reporting.
//! - `lock`: per-volume flock(2) locks across processes (released by the kernel on death).
//! - `group_commit`: the machinery of a group commit (directories beneath the root, temps,
//!   one barrier, renames, locks).
//! - `batch`: make, start, stop and remove many volumes, each batch one group commit.
//! - `image_names`: which entries of a VM directory are a volume's images (remove batches).

pub mod batch;
pub mod control;
pub mod copy;
pub mod diff;
pub mod dir;
pub mod durable;
pub mod error;
pub mod extents;
pub mod freed;
pub mod fsstats;
pub mod group_commit;
pub mod image_names;
pub mod imagehash;
pub mod lock;
pub mod loopdev;
pub mod probe;
pub mod receive;
pub mod resize;
pub mod send;
pub mod send_format;
pub mod sparse;
pub mod sparse_reader;
mod sys;
pub mod tempname;
pub mod usage;
pub mod zeroskip;

pub use control::Control;
pub use copy::{copy_file, CopyMethod, CopyOptions, CopyOutcome, ReflinkMode, SparseMode};
pub use dir::{Dir, Entry};
pub use error::{Error, Result};
