//! `SendStream` and `ReceiveStream`: the send stream (docs/design.md §8) across napi.
//!
//! Each is an object holding the open core `Sender` / `Receiver` between steps; every
//! step (open, next batch of records, write a piece of stream, finish) is one task on
//! the threadpool, so the JS side pulls or pushes at its own pace and memory stays at
//! one batch. Steps return the image offset reached, which TS turns into progress.
//! A `CancelToken` stops a long step (hashing a large range) between chunks.
//! `parseSendHeader` is synchronous: it only decodes (and, under a key, authenticates)
//! at most `MAX_HEADER_LEN` bytes. Identities and image hashes cross as 32 hex digits
//! (neither fits a JS number); a stream key crosses as its key file's contents, parsed
//! here (`send_format::parse_key`).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;
use reflink_pool_core::error::{codes, Error, Result};
use reflink_pool_core::imagehash::{from_hex, image_hash, to_hex};
use reflink_pool_core::receive::{stage, Receiver};
use reflink_pool_core::send::Sender;
use reflink_pool_core::send_format::{
    parse_key, BaseRef, Header, Seal, StateId, StreamKey, VolumeKind, MAX_HEADER_LEN, VERSION,
};
use reflink_pool_core::tempname::KeptTemp;
use reflink_pool_core::Control;

use crate::cancel::CancelToken;
use crate::outcome::{outcome, task, to_js, to_u64};
use crate::pool_dir::{target, PoolDir, Target, TargetResult};
use crate::steps::{lock, step, Step};

/// The header of a send stream as JS sees it.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeSendHeader {
    /// Size of the target image in bytes.
    pub size: f64,
    /// The target state's identity (32 hex digits).
    pub target_id: String,
    /// The base state's identity, size and image hash (incremental streams only).
    pub base_id: Option<String>,
    pub base_size: Option<f64>,
    pub base_hash: Option<String>,
    /// The volume's kind (docs/design.md §8.3; absent from version 1 streams).
    pub save_on_stop: Option<bool>,
    pub snap_on_start: Option<bool>,
    pub rw: Option<bool>,
    /// DATA records may be zstd-compressed.
    pub compressed: Option<bool>,
    /// A MAC chain under a key seals the records.
    pub keyed: Option<bool>,
    /// A resumed stream: the image offset its records start at.
    pub resume_from: Option<f64>,
    /// Set by `parseSendHeader`: the format version and the header's bytes.
    pub version: Option<u32>,
    pub header_length: Option<u32>,
}

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeSendStats {
    pub data_bytes: f64,
    pub hole_bytes: f64,
    pub records: f64,
    pub stream_bytes: f64,
    /// The target's image hash (32 hex digits), once the stream ended.
    pub image_hash: String,
}

/// A batch of stream bytes (None once the stream ended) and the image offset reached.
#[napi(object)]
pub struct NativeSendBatch {
    pub data: Option<Buffer>,
    pub position: f64,
}

outcome!(SendHeaderOutcome, NativeSendHeader);
outcome!(SendBatchOutcome, NativeSendBatch);
outcome!(HashOutcome, String);

fn bad(detail: String) -> Error {
    Error::lib(codes::ERR_INVALID_ARG_VALUE, "validate", detail)
}

fn state_id(name: &str, hex: &str) -> Result<StateId> {
    let v = from_hex(hex).ok_or_else(|| bad(format!("{name} must be 32 hex digits")))?;
    Ok(v.to_be_bytes())
}

fn hash_of(name: &str, hex: &str) -> Result<u128> {
    from_hex(hex).ok_or_else(|| bad(format!("{name} must be 32 hex digits")))
}

fn id_hex(id: &StateId) -> String {
    to_hex(u128::from_be_bytes(*id))
}

impl NativeSendHeader {
    fn to_core(&self) -> Result<Header> {
        let base = match (&self.base_id, self.base_size, &self.base_hash) {
            (Some(id), Some(size), Some(hash)) => Some(BaseRef {
                id: state_id("baseId", id)?,
                size: to_u64("baseSize", size)?,
                hash: hash_of("baseHash", hash)?,
            }),
            (None, None, None) => None,
            _ => return Err(bad("baseId, baseSize and baseHash go together".to_string())),
        };
        Ok(Header {
            volume: VolumeKind {
                save_on_stop: self.save_on_stop.unwrap_or(false),
                snap_on_start: self.snap_on_start.unwrap_or(false),
                rw: self.rw.unwrap_or(false),
            },
            compressed: self.compressed.unwrap_or(false),
            keyed: self.keyed.unwrap_or(false),
            resume_from: self
                .resume_from
                .map(|v| to_u64("resumeFrom", v))
                .transpose()?,
            ..Header::new(
                to_u64("size", self.size)?,
                state_id("targetId", &self.target_id)?,
                base,
            )
        })
    }

    fn from_core(h: &Header) -> Result<Self> {
        Ok(NativeSendHeader {
            size: to_js("size", h.size)?,
            target_id: id_hex(&h.target_id),
            base_id: h.base.map(|b| id_hex(&b.id)),
            base_size: h.base.map(|b| to_js("baseSize", b.size)).transpose()?,
            base_hash: h.base.map(|b| to_hex(b.hash)),
            save_on_stop: (h.version >= 2).then_some(h.volume.save_on_stop),
            snap_on_start: (h.version >= 2).then_some(h.volume.snap_on_start),
            rw: (h.version >= 2).then_some(h.volume.rw),
            compressed: Some(h.compressed),
            keyed: Some(h.keyed),
            resume_from: h.resume_from.map(|v| to_js("resumeFrom", v)).transpose()?,
            version: Some(h.version),
            header_length: Some(h.wire_len() as u32),
        })
    }
}

/// A stream key from its key file's contents (absent: an unkeyed stream).
fn key_of(contents: Option<&Buffer>) -> Result<Option<StreamKey>> {
    contents.map(|c| parse_key(c)).transpose()
}

/// Decode and check a stream's header from its first bytes (at least
/// `sendHeaderLength()`, or the whole stream if shorter), authenticating it under
/// `key` (a key file's contents) when given (synchronous: no I/O).
#[napi]
pub fn parse_send_header(data: Buffer, key: Option<Buffer>) -> SendHeaderOutcome {
    key_of(key.as_ref())
        .and_then(|k| Header::decode(&data, k.as_ref()))
        .and_then(|(h, _)| NativeSendHeader::from_core(&h))
        .into()
}

/// Bytes to read before `parseSendHeader`: the longest header. Every valid stream is
/// longer (its header and at least an END record).
#[napi]
pub fn send_header_length() -> u32 {
    MAX_HEADER_LEN as u32
}

/// The send stream format version this build writes.
#[napi]
pub fn send_format_version() -> u32 {
    VERSION
}

/// The one place these tasks open a committed image: `rel` of the pool, read-only, a
/// regular file reached without symlinks (`core::dir`). Returns it and its shown path.
fn open_read(at: &TargetResult) -> Result<(File, PathBuf)> {
    let entry = target(at)?.entry()?;
    Ok((entry.open_read()?, entry.shown()))
}

/// The path shown in messages for a target.
fn shown(target: &TargetResult) -> PathBuf {
    target.as_ref().map(Target::shown).unwrap_or_default()
}

/// A committed image opened for a send must have exactly the size the header states.
fn check_size(file: &File, path: &Path, want: u64) -> Result<()> {
    let got = file
        .metadata()
        .map_err(|e| Error::io(e, "fstat").with_path(path))?
        .len();
    if got == want {
        Ok(())
    } else {
        Err(Error::lib(
            codes::ERR_SOURCE_CHANGED,
            "send",
            format!("{got} bytes where {want} were expected"),
        )
        .with_path(path))
    }
}

// ---- hashImage -----------------------------------------------------------

pub struct HashImageTask {
    target: TargetResult,
    cancel: Option<Arc<AtomicBool>>,
}

impl HashImageTask {
    fn run(&self) -> Result<String> {
        let (file, path) = open_read(&self.target)?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(e, "fstat").with_path(&path))?
            .len();
        let ctl = Control {
            cancel: self.cancel.as_deref(),
            progress: None,
        };
        let h = image_hash(&file, size, &ctl).map_err(|e| e.with_path(&path))?;
        Ok(to_hex(h))
    }
}

task!(HashImageTask, HashOutcome, "hashImage");

/// The image hash of the image `rel` of the pool (docs/design.md §8), reading only its
/// data runs.
#[napi]
pub fn hash_image(
    dir: &PoolDir,
    rel: String,
    cancel: Option<&CancelToken>,
) -> AsyncTask<HashImageTask> {
    AsyncTask::new(HashImageTask {
        target: dir.at(rel),
        cancel: cancel.map(CancelToken::flag),
    })
}

// ---- SendStream ----------------------------------------------------------

pub struct SendShared {
    target: TargetResult,
    base: Option<TargetResult>,
    header: NativeSendHeader,
    key: Option<Buffer>,
    cancel: Option<Arc<AtomicBool>>,
    sender: Mutex<Option<Sender>>,
}

#[napi]
pub struct SendStream {
    shared: Arc<SendShared>,
}

pub enum SendOp {
    Open,
    Next { want: f64 },
    Close,
}

pub type SendTask = Step<SendShared, SendOp>;

impl SendTask {
    fn run(&self) -> Result<NativeSendBatch> {
        let s = &self.shared;
        let mut sender = lock(&s.sender);
        let ctl = Control {
            cancel: s.cancel.as_deref(),
            progress: None,
        };
        match &self.op {
            SendOp::Open => {
                let header = s.header.to_core()?;
                let (target, path) = open_read(&s.target)?;
                check_size(&target, &path, header.size)?;
                let base = match (&s.base, &header.base) {
                    (Some(t), Some(b)) => {
                        let (f, p) = open_read(t)?;
                        check_size(&f, &p, b.size)?;
                        Some(f)
                    }
                    _ => None,
                };
                let key = key_of(s.key.as_ref())?;
                *sender =
                    Some(Sender::new(header, target, base, key).map_err(|e| e.with_path(&path))?);
                Ok(NativeSendBatch {
                    data: None,
                    position: 0.0,
                })
            }
            SendOp::Next { want } => {
                let snd = sender
                    .as_mut()
                    .ok_or_else(|| bad("the send stream is not open".to_string()))?;
                let want = to_u64("want", *want)? as usize;
                let mut out = Vec::with_capacity(want.min(8 << 20) + (2 << 20));
                let more = snd
                    .fill(&mut out, want, &ctl)
                    .map_err(|e| e.with_path(shown(&s.target)))?;
                let position = if more {
                    snd.position()
                } else {
                    to_u64("size", s.header.size)?
                };
                Ok(NativeSendBatch {
                    data: (!out.is_empty()).then(|| out.into()),
                    position: to_js("position", position)?,
                })
            }
            SendOp::Close => {
                sender.take();
                Ok(NativeSendBatch {
                    data: None,
                    position: 0.0,
                })
            }
        }
    }
}

task!(SendTask, SendBatchOutcome, "send");

#[napi]
impl SendStream {
    /// No I/O here: `open()` opens `target` (and `base`, for an incremental header).
    /// `key`: a key file's contents, exactly when `header.keyed`.
    #[napi(constructor)]
    pub fn new(
        dir: &PoolDir,
        target: String,
        base: Option<String>,
        header: NativeSendHeader,
        key: Option<Buffer>,
        cancel: Option<&CancelToken>,
    ) -> Self {
        SendStream {
            shared: Arc::new(SendShared {
                target: dir.at(target),
                base: base.map(|b| dir.at(b)),
                header,
                key,
                cancel: cancel.map(CancelToken::flag),
                sender: Mutex::new(None),
            }),
        }
    }

    #[napi]
    pub fn open(&self) -> AsyncTask<SendTask> {
        step(&self.shared, SendOp::Open)
    }

    /// Whole records totalling at least `want` bytes (fewer at the end); `data` is
    /// absent once the stream has ended.
    #[napi]
    pub fn next(&self, want: f64) -> AsyncTask<SendTask> {
        step(&self.shared, SendOp::Next { want })
    }

    #[napi]
    pub fn close(&self) -> AsyncTask<SendTask> {
        step(&self.shared, SendOp::Close)
    }

    /// What was sent so far (the image hash is set once the stream ended).
    #[napi]
    pub fn stats(&self) -> Option<NativeSendStats> {
        let sender = lock(&self.shared.sender);
        let st = sender.as_ref()?.stats();
        Some(NativeSendStats {
            data_bytes: st.data_bytes as f64,
            hole_bytes: st.hole_bytes as f64,
            records: st.records as f64,
            stream_bytes: st.stream_bytes as f64,
            image_hash: to_hex(st.image_hash),
        })
    }
}

// ---- ReceiveStream -------------------------------------------------------

pub struct ReceiveShared {
    /// The import name: the receive's own file is made beside it (`receive::stage`).
    target: TargetResult,
    /// The committed image the stream applies to (incremental streams).
    base: Option<TargetResult>,
    header: Header,
    seal: Seal,
    over_existing: bool,
    cancel: Option<Arc<AtomicBool>>,
    receiver: Mutex<Option<Receiver>>,
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
        let mut receiver = lock(&s.receiver);
        let ctl = Control {
            cancel: s.cancel.as_deref(),
            progress: None,
        };
        let not_open = || bad("the receive stream is not open".to_string());
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
                let entry = target(&s.target)?.entry_creating()?;
                let base = match &s.base {
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
                let r = receiver.as_mut().ok_or_else(not_open)?;
                r.feed(data, &ctl)
                    .map_err(|e| e.with_path(shown(&s.target)))?;
                step(r.position(), None)
            }
            ReceiveOp::Finish => {
                // Kept on failure: a stream cut before its END can still be suspended.
                let r = receiver.as_mut().ok_or_else(not_open)?;
                let h = r.finish(&ctl).map_err(|e| e.with_path(shown(&s.target)))?;
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
                r.sync().map_err(|e| e.with_path(shown(&s.target)))?;
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
    /// `header` is the stream's header (`headerLength` bytes, as `parseSendHeader`
    /// checked it), `key` the key file's contents it was checked under.
    /// `overExisting`: a full stream is applied over the image cloned from `base`,
    /// writing only the blocks that differ (`receive --like`). No I/O here.
    #[napi(constructor)]
    pub fn new(
        dir: &PoolDir,
        rel: String,
        base: Option<String>,
        header: Buffer,
        key: Option<Buffer>,
        over_existing: Option<bool>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<Self> {
        let (header, seal) = key_of(key.as_ref())
            .and_then(|k| Header::decode(&header, k.as_ref()))
            .map_err(|e| napi::Error::new(napi::Status::InvalidArg, e.to_string()))?;
        Ok(ReceiveStream {
            shared: Arc::new(ReceiveShared {
                target: dir.at(rel),
                base: base.map(|b| dir.at(b)),
                header,
                seal,
                over_existing: over_existing.unwrap_or(false),
                cancel: cancel.map(CancelToken::flag),
                receiver: Mutex::new(None),
                staged: Mutex::new(None),
            }),
        })
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
