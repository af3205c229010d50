//! `ReceiveStream`: the receiving end of the send stream (docs/design.md §8) across napi.
//! The object holds the open core `Receiver` and the receive's own file between steps
//! (`steps::Stream`); every step (open, write a piece of stream, finish, suspend, close)
//! is one task on the threadpool, so the JS side pushes at its own pace. Steps return
//! the image offset reached, which TS turns into progress. A `CancelToken` stops a long
//! step (hashing a large range) between chunks.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;
use reflink_pool_core::error::{Error, Result};
use reflink_pool_core::imagehash::to_hex;
use reflink_pool_core::receive::{stage, Receiver};
use reflink_pool_core::send_format::{Header, Seal};
use reflink_pool_core::tempname::KeptTemp;

use crate::cancel::CancelToken;
use crate::outcome::{outcome, task, to_js};
use crate::pool_dir::{target, PoolDir};
use crate::send_header::DecodedSendHeader;
use crate::steps::{check_size, lock, open_read, opened, step, Step, Stream};

pub struct ReceiveShared {
    /// The target is the import name (the receive's own file is made beside it,
    /// `receive::stage`); the base, the committed image the stream applies to
    /// (incremental streams); the state, the open `Receiver`.
    stream: Stream<Receiver>,
    header: Header,
    seal: Seal,
    over_existing: bool,
    /// The name of the receive's own file: unlinked when dropped before `finish`.
    staged: Mutex<Option<KeptTemp>>,
}

#[napi]
pub struct ReceiveStream {
    shared: Arc<ReceiveShared>,
}

pub enum ReceiveOp {
    Open,
    Write { data: Buffer },
    Finish,
    Suspend,
    Close,
}

pub type ReceiveTask = Step<ReceiveShared, ReceiveOp>;

/// What a receive step answers: the image offset reached, or the image hash at the end;
/// `open` also names the receive's own file and how the base was copied into it.
#[napi(object)]
pub struct NativeReceiveStep {
    pub position: f64,
    pub image_hash: Option<String>,
    /// (open) The file's name in the import's directory.
    pub name: Option<String>,
    /// (open) The copy method of the base; absent for a full stream (a sparse file).
    #[napi(ts_type = "'reflink' | 'copy-range' | 'read-write' | 'empty'")]
    pub method: Option<String>,
    /// (suspend) Records verified and applied; absent when there is nothing to keep.
    pub records: Option<f64>,
}

outcome!(ReceiveStepOutcome, NativeReceiveStep);

impl ReceiveTask {
    fn run(&self) -> Result<NativeReceiveStep> {
        let s = &self.shared;
        let st = &s.stream;
        let mut receiver = st.state();
        let ctl = st.control();
        let step = |position: u64, image_hash: Option<String>| -> Result<NativeReceiveStep> {
            Ok(NativeReceiveStep {
                position: to_js("position", position)?,
                image_hash,
                name: None,
                method: None,
                records: None,
            })
        };
        match &self.op {
            ReceiveOp::Open => {
                // The receive's own file (O_EXCL beside the import name), written through
                // this handle only: never a file another call was handed.
                let entry = target(&st.target)?.entry_creating()?;
                let base = match &st.base {
                    Some(b) => {
                        let (f, p) = open_read(b)?;
                        // A --like image may have any size, a partial receive the
                        // stream's; a base has the header's.
                        if let (Some(hb), None) = (s.header.base, s.header.resume_from) {
                            check_size(&f, &p, hb.size)?;
                        }
                        Some(f)
                    }
                    None => None,
                };
                let (file, kept, method) = stage(&entry, base.as_ref(), s.header.size, &ctl)?;
                let meta = file
                    .metadata()
                    .map_err(|e| Error::io(e, "fstat").with_path(kept.tmp.shown()))?;
                let block = usize::try_from(meta.blksize()).unwrap_or(4096);
                let name = kept.tmp.name.to_string_lossy().into_owned();
                let r = Receiver::new(s.header, s.seal.clone(), file, block);
                *receiver = Some(if s.over_existing {
                    r.over_existing()
                } else {
                    r
                });
                *lock(&s.staged) = Some(kept);
                Ok(NativeReceiveStep {
                    name: Some(name),
                    method: method.map(|m| m.as_str().to_string()),
                    ..step(0, None)?
                })
            }
            ReceiveOp::Write { data } => {
                let r = opened(&mut receiver, "receive stream")?;
                r.feed(data, &ctl).map_err(|e| at_file(e, st.shown()))?;
                step(r.position(), None)
            }
            ReceiveOp::Finish => {
                // Kept on failure: a stream cut before its END can still be suspended.
                let r = opened(&mut receiver, "receive stream")?;
                let h = r.finish(&ctl).map_err(|e| at_file(e, st.shown()))?;
                receiver.take();
                // Verified: the name is the pool's commit's now (it renames or removes it);
                // the directory handle closes here, not when JS collects this object.
                if let Some(mut kept) = lock(&s.staged).take() {
                    kept.keep();
                }
                step(s.header.size, Some(to_hex(h)))
            }
            ReceiveOp::Suspend => {
                // A cut stream: keep what was verified for a resume (docs/design.md §8.9).
                // The file is fsynced and its name handed to the pool, which renames it.
                let r = match receiver.take() {
                    Some(r) if r.suspendable() => r,
                    _ => return step(0, None),
                };
                r.sync().map_err(|e| e.with_path(st.shown()))?;
                let mut staged = lock(&s.staged);
                let Some(kept) = staged.as_mut() else {
                    return step(0, None);
                };
                kept.keep();
                Ok(NativeReceiveStep {
                    name: Some(kept.tmp.name.to_string_lossy().into_owned()),
                    records: Some(f64::from(r.records())),
                    ..step(r.position(), None)?
                })
            }
            ReceiveOp::Close => {
                receiver.take();
                // Unlinks the file unless `finish` handed it over.
                lock(&s.staged).take();
                step(0, None)
            }
        }
    }
}

task!(ReceiveTask, ReceiveStepOutcome, "receive");

#[napi]
impl ReceiveStream {
    /// `open()` makes the receive's own file beside the import name `rel` of the pool:
    /// a clone of the committed image `base` (the base of an incremental, or the
    /// `receive --like` volume's image) or a sparse file, at the stream's size;
    /// `header` is the stream's header as `parseSendHeader` decoded (and authenticated) it.
    /// `overExisting`: a full stream is applied over the image cloned from `base`,
    /// writing only the blocks that differ (`receive --like`). No I/O here.
    #[napi(constructor)]
    pub fn new(
        dir: &PoolDir,
        rel: String,
        base: Option<String>,
        header: &DecodedSendHeader,
        over_existing: Option<bool>,
        cancel: Option<&CancelToken>,
    ) -> Self {
        ReceiveStream {
            shared: Arc::new(ReceiveShared {
                stream: Stream::new(dir, rel, base, cancel),
                header: header.header,
                seal: header.seal.clone(),
                over_existing: over_existing.unwrap_or(false),
                staged: Mutex::new(None),
            }),
        }
    }

    /// Make the receive's own file (see the constructor); answers its name and copy method.
    #[napi]
    pub fn open(&self) -> AsyncTask<ReceiveTask> {
        step(&self.shared, ReceiveOp::Open)
    }

    /// Apply the next piece of the stream (after its header); the buffer must not
    /// change until the promise settles.
    #[napi]
    pub fn write(&self, data: Buffer) -> AsyncTask<ReceiveTask> {
        step(&self.shared, ReceiveOp::Write { data })
    }

    /// Check the END record and the image hash; answers the image hash. No fsync: the
    /// pool's commit fsyncs the file before renaming it into place.
    #[napi]
    pub fn finish(&self) -> AsyncTask<ReceiveTask> {
        step(&self.shared, ReceiveOp::Finish)
    }

    /// After a failure that cut the stream (it ended early, the source failed, or an
    /// abort): fsync the file and hand over its name (`name`, with `position` and
    /// `records`) so the pool keeps it for a resume; nothing (`name` absent) when no
    /// record was applied or the stream was complete.
    #[napi]
    pub fn suspend(&self) -> AsyncTask<ReceiveTask> {
        step(&self.shared, ReceiveOp::Suspend)
    }

    #[napi]
    pub fn close(&self) -> AsyncTask<ReceiveTask> {
        step(&self.shared, ReceiveOp::Close)
    }
}

/// A failure of the receive's own file (a full disk, an I/O error) names that file; a
/// refused stream (corrupt, unauthenticated, truncated) is about the stream's bytes, and
/// the pool's staging file, deleted with it, is no path to give the user.
fn at_file(e: Error, file: PathBuf) -> Error {
    if e.errno().is_some() {
        e.with_path(file)
    } else {
        e
    }
}
